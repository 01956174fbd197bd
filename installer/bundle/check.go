package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Check validates the bundle in dir and reports every defect it finds, not
// only the first: each file is parsed on its own, so a missing token and a
// malformed cluster.env are reported together. When no file has a defect,
// the bundle is loaded with LoadWith, whose remaining checks (key values,
// addresses, the VM's IP) add at most one more error. An expired istio-token
// is a defect here: a machine being set up has no certificate to fall back on.
// The returned Bundle is nil whenever an error is returned.
func Check(dir string, opts Options) (*Bundle, []error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	var errs []error
	add := func(err error) {
		var e *Error
		if errors.As(err, &e) && e.Dir == "" {
			e.Dir = dir
		}
		errs = append(errs, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("not a directory")
		}
		return nil, []error{fmt.Errorf("bundle: %s: %w; give the directory that istioctl x workload entry configure -o DIR wrote", dir, err)}
	}
	read := func(file string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			msg := "cannot read"
			if errors.Is(err, fs.ErrNotExist) {
				msg = "missing; a bundle from istioctl x workload entry configure -o DIR has cluster.env, mesh.yaml, root-cert.pem, istio-token and hosts"
			}
			add(&Error{File: file, Msg: msg, Err: err})
			return nil
		}
		return data
	}
	if data := read(FileClusterEnv); data != nil {
		if lines, err := ParseClusterEnv(data); err != nil {
			add(err)
		} else {
			env := map[string]string{}
			for _, l := range lines {
				env[l.Key] = l.Value
			}
			for _, k := range []string{"POD_NAMESPACE", "SERVICE_ACCOUNT"} {
				if env[k] == "" {
					add(&Error{File: FileClusterEnv, Key: k, Msg: "required key is missing or empty; regenerate the bundle with istioctl x workload entry configure"})
				}
			}
		}
	}
	if data := read(FileMeshYAML); data != nil {
		if _, err := ParseMeshYAML(data); err != nil {
			add(err)
		}
	}
	if data := read(FileRootCert); data != nil {
		if _, err := ParseRootCerts(data, now()); err != nil {
			add(err)
		}
	}
	if data := read(FileToken); data != nil {
		claims, err := ParseToken(string(data))
		switch {
		case err != nil:
			add(err)
		case !claims.Expiry.IsZero() && !now().Before(claims.Expiry):
			add(&TokenError{Path: filepath.Join(dir, FileToken), Expiry: claims.Expiry, Now: now()})
		}
	}
	if data := read(FileHosts); data != nil {
		if _, err := ParseHosts(data); err != nil {
			add(err)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	b, err := LoadWith(dir, opts)
	if err != nil {
		return nil, []error{err}
	}
	return b, nil
}
