package bundle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
)

// Files is the content of a bundle directory, for writing one in the format
// istioctl x workload entry configure uses.
type Files struct {
	// ClusterEnv becomes cluster.env: sorted KEY='value' lines.
	ClusterEnv map[string]string
	// ProxyConfig becomes mesh.yaml's defaultConfig. MeshYAML, when set, is
	// written verbatim instead.
	ProxyConfig *meshv1alpha1.ProxyConfig
	MeshYAML    []byte
	// RootCertPEM becomes root-cert.pem.
	RootCertPEM []byte
	// Token becomes istio-token (mode 0600).
	Token string
	// Hosts becomes hosts (may be empty).
	Hosts []HostEntry
}

// Render returns the bytes of each bundle file, keyed by file name, after
// checking that every part is well formed.
func (f *Files) Render() (map[string][]byte, error) {
	out := map[string][]byte{}
	if f.ClusterEnv["POD_NAMESPACE"] == "" || f.ClusterEnv["SERVICE_ACCOUNT"] == "" {
		return nil, &Error{File: FileClusterEnv, Msg: "POD_NAMESPACE and SERVICE_ACCOUNT are required"}
	}
	env, err := FormatClusterEnv(f.ClusterEnv)
	if err != nil {
		return nil, err
	}
	out[FileClusterEnv] = env
	if f.MeshYAML != nil {
		if _, err := ParseMeshYAML(f.MeshYAML); err != nil {
			return nil, err
		}
		out[FileMeshYAML] = f.MeshYAML
	} else if out[FileMeshYAML], err = FormatMeshYAML(f.ProxyConfig); err != nil {
		return nil, err
	}
	if len(f.RootCertPEM) == 0 {
		return nil, &Error{File: FileRootCert, Msg: "no root certificate given"}
	}
	out[FileRootCert] = f.RootCertPEM
	if _, err := ParseToken(f.Token); err != nil {
		return nil, err
	}
	out[FileToken] = []byte(strings.TrimSpace(f.Token))
	if out[FileHosts], err = FormatHosts(f.Hosts); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteDir writes the bundle into dir (created 0755 if missing): every file
// 0644 except istio-token, 0600. All content is checked before anything is
// written, and each file is replaced atomically, so a bad Files leaves dir as
// it was.
func (f *Files) WriteDir(dir string) error {
	files, err := f.Render()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle: create %s: %w", dir, err)
	}
	for _, name := range []string{FileRootCert, FileMeshYAML, FileHosts, FileToken, FileClusterEnv} {
		mode := os.FileMode(0o644)
		if name == FileToken {
			mode = 0o600
		}
		if err := atomicfile.Write(filepath.Join(dir, name), files[name], mode); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}
