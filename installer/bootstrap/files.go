package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Modes of the installed bundle: root owns it, the agent's group reads it,
// others get nothing (the istio-token is a live credential).
const (
	dirMode  os.FileMode = 0o750
	fileMode os.FileMode = 0o640
)

// bundleFiles are the files bootstrap installs, in the order it writes them.
var bundleFiles = []string{bundle.FileClusterEnv, bundle.FileMeshYAML, bundle.FileRootCert, bundle.FileToken, bundle.FileHosts}

// readBundle returns the content of each bundle file of dir, with
// ISTIO_SVC_IP set in cluster.env when ip is given.
func readBundle(dir, ip string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range bundleFiles {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		out[f] = data
	}
	if ip != "" {
		lines, err := bundle.ParseClusterEnv(out[bundle.FileClusterEnv])
		if err != nil {
			return nil, err
		}
		env := map[string]string{}
		for _, l := range lines {
			env[l.Key] = l.Value
		}
		if env["ISTIO_SVC_IP"] != ip {
			env["ISTIO_SVC_IP"] = ip
			if out[bundle.FileClusterEnv], err = bundle.FormatClusterEnv(env); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// sameInstalled reports whether dir already holds exactly files (content,
// mode, owner and group, and no other file).
func sameInstalled(dir string, files map[string][]byte, gid int) bool {
	if !sameOwner(dir, dirMode|fs.ModeDir, gid) {
		return false
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != len(files) {
		return false
	}
	for name, want := range files {
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) || !sameOwner(p, fileMode, gid) {
			return false
		}
	}
	return true
}

func sameOwner(path string, mode os.FileMode, gid int) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode() != mode {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid() && int(st.Gid) == gid
}

// install puts files into dir, replacing whatever dir held: the new bundle is
// written complete into dir.new, then swapped in with two renames, so the
// agent never reads half of one bundle and half of another, and a file the
// old bundle had and the new one lacks does not survive.
func install(dir string, files map[string][]byte, gid int) error {
	staging, old := dir+".new", dir+".old"
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.Mkdir(staging, dirMode); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fail := func(err error) error {
		os.RemoveAll(staging)
		return fmt.Errorf("bootstrap: install the bundle into %s: %w", dir, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(staging, n)
		if err := os.WriteFile(p, files[n], fileMode); err != nil {
			return fail(err)
		}
		if err := setOwner(p, fileMode, gid); err != nil {
			return fail(err)
		}
	}
	if err := setOwner(staging, dirMode, gid); err != nil {
		return fail(err)
	}
	os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	if err := os.Rename(staging, dir); err != nil {
		os.Rename(old, dir)
		return fail(err)
	}
	os.RemoveAll(old)
	return nil
}

func setOwner(path string, mode os.FileMode, gid int) error {
	if err := os.Chown(path, os.Geteuid(), gid); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
