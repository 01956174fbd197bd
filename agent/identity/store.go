package identity

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files under StateDir. Each is a symbolic link into the directory named by
// the "identity" link, which is swapped in one rename, so key and chain on
// disk always belong together.
const (
	FileKey       = "key.pem"
	FileCertChain = "cert-chain.pem"
	FileRoot      = "root-cert.pem"
	currentLink   = "identity"
	genPrefix     = "identity-"
)

type store struct{ dir string }

// load returns the stored identity if it is complete, matches its key,
// verifies against roots and is valid at now; otherwise nil and why not.
func (s *store) load(roots *x509.CertPool, now time.Time) (*issued, error) {
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, FileKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no certificate is stored in %s", s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("the stored key cannot be read: %w", err)
	}
	chainPEM, err := os.ReadFile(filepath.Join(s.dir, FileCertChain))
	if err != nil {
		return nil, fmt.Errorf("the stored certificate chain cannot be read: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("the stored key %s is not PEM", filepath.Join(s.dir, FileKey))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the stored key %s does not parse: %w", filepath.Join(s.dir, FileKey), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the stored key %s is not a signing key", filepath.Join(s.dir, FileKey))
	}
	chain, err := parseCerts(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("the stored chain %s: %w", filepath.Join(s.dir, FileCertChain), err)
	}
	c := &issued{key: signer, keyPEM: keyPEM, chain: chain, leaf: chain[0]}
	if rootPEM, err := os.ReadFile(filepath.Join(s.dir, FileRoot)); err == nil {
		if rs, err := parseCerts(rootPEM); err == nil {
			c.root = rs[0]
		}
	}
	if !now.Before(c.leaf.NotAfter) {
		return nil, fmt.Errorf("the stored certificate expired at %s", c.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := c.verify(roots, now); err != nil {
		return nil, fmt.Errorf("the stored certificate is unusable: %w", err)
	}
	return c, nil
}

// save writes c into a fresh generation directory, fsyncs it, and switches
// the "identity" link to it in one rename; older generations are removed.
func (s *store) save(c *issued) error {
	if c.keyPEM == nil {
		der, err := x509.MarshalPKCS8PrivateKey(c.key)
		if err != nil {
			return fmt.Errorf("identity: encode key: %w", err)
		}
		c.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("identity: create state directory %s: %w", s.dir, err)
	}
	gen := genPrefix + strconv.FormatInt(time.Now().UnixNano(), 10)
	genDir := filepath.Join(s.dir, gen)
	if err := os.Mkdir(genDir, 0o755); err != nil {
		return fmt.Errorf("identity: create %s: %w", genDir, err)
	}
	fail := func(err error) error {
		os.RemoveAll(genDir)
		return fmt.Errorf("identity: store certificate in %s: %w", s.dir, err)
	}
	var rootPEM []byte
	if c.root != nil {
		rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.root.Raw})
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{FileKey, c.keyPEM, 0o600}, {FileCertChain, c.chainPEM(), 0o644}, {FileRoot, rootPEM, 0o644}} {
		if err := writeSynced(filepath.Join(genDir, f.name), f.data, f.mode); err != nil {
			return fail(err)
		}
	}
	if err := syncDir(genDir); err != nil {
		return fail(err)
	}
	// Stable names: StateDir/key.pem -> identity/key.pem, created once.
	for _, name := range []string{FileKey, FileCertChain, FileRoot} {
		if err := ensureLink(filepath.Join(s.dir, name), filepath.Join(currentLink, name)); err != nil {
			return fail(err)
		}
	}
	tmp := filepath.Join(s.dir, "."+currentLink+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(gen, tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, currentLink)); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("identity: sync %s: %w", s.dir, err)
	}
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), genPrefix) && e.Name() != gen {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
	return nil
}

// ensureLink makes path a symbolic link to target unless it already is.
func ensureLink(path, target string) error {
	if t, err := os.Readlink(path); err == nil && t == target {
		return nil
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
