// Package cloudinit writes the #cloud-config user-data that puts a new VM on
// the mesh at its first boot: it installs the onramp package (from a URL or
// an apt repository), writes the onboarding bundle (the istio-token 0600,
// root's only) and runs onramp bootstrap, which installs the bundle for the
// agent, starts it and waits until it is READY.
package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onramp-mesh/onramp/installer/bundle"
)

// MaxSize is EC2's limit on user-data (16 KiB); other clouds allow as much or more.
const MaxSize = 16 << 10

// SeedDir is where the user-data writes the bundle; bootstrap copies it into
// /etc/onramp/bundle and the last command removes it.
const SeedDir = "/run/onramp-bundle"

// Options of UserData. Bundle and one of PackageURL or AptRepo are required.
type Options struct {
	// Bundle is the directory istioctl x workload entry configure -o wrote.
	Bundle string
	// PackageURL is an https URL of the .deb or .rpm to install.
	PackageURL string
	// AptRepo is a one-line apt source ("deb [signed-by=...] URL SUITE COMPONENT")
	// the onramp package is installed from.
	AptRepo string
	// DataPlane is passed to bootstrap (--data-plane none|proxy).
	DataPlane string
	// IP is passed to bootstrap (--ip) when set.
	IP string
}

// UserData returns the #cloud-config document. It checks the bundle first,
// as bootstrap will (every defect at once), and fails when the document is
// larger than MaxSize.
func UserData(o Options) ([]byte, error) {
	if (o.PackageURL == "") == (o.AptRepo == "") {
		return nil, errors.New("cloud-init: give exactly one of --package-url URL and --apt-repo LINE")
	}
	switch o.DataPlane {
	case "none", "proxy":
	default:
		return nil, fmt.Errorf("cloud-init: --data-plane %q: want none or proxy (is there an Envoy or ztunnel on the VM?)", o.DataPlane)
	}
	if _, errs := bundle.Check(o.Bundle, bundle.Options{}); len(errs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "cloud-init: the bundle in %s has %d defect(s):", o.Bundle, len(errs))
		for _, e := range errs {
			b.WriteString("\n  - " + e.Error())
		}
		return nil, errors.New(b.String())
	}

	type file struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	}
	doc := struct {
		Apt        map[string]any `yaml:"apt,omitempty"`
		Packages   []string       `yaml:"packages,omitempty"`
		WriteFiles []file         `yaml:"write_files"`
		Runcmd     [][]string     `yaml:"runcmd"`
	}{}
	for _, name := range []string{bundle.FileClusterEnv, bundle.FileMeshYAML, bundle.FileRootCert, bundle.FileToken, bundle.FileHosts} {
		data, err := os.ReadFile(filepath.Join(o.Bundle, name))
		if err != nil {
			return nil, fmt.Errorf("cloud-init: %w", err)
		}
		perm := "0644"
		if name == bundle.FileToken {
			perm = "0600"
		}
		doc.WriteFiles = append(doc.WriteFiles, file{Path: path.Join(SeedDir, name), Owner: "root:root", Permissions: perm, Content: string(data)})
	}
	if o.AptRepo != "" {
		if strings.ContainsAny(o.AptRepo, "\n") || !strings.HasPrefix(strings.TrimSpace(o.AptRepo), "deb ") {
			return nil, fmt.Errorf("cloud-init: --apt-repo %q: want one line like deb [signed-by=/usr/share/keyrings/onramp.gpg] URL stable main", o.AptRepo)
		}
		doc.Apt = map[string]any{"sources": map[string]any{"onramp.list": map[string]any{"source": strings.TrimSpace(o.AptRepo)}}}
		doc.Packages = []string{"onramp"}
	} else {
		u := o.PackageURL
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return nil, fmt.Errorf("cloud-init: --package-url %q: want an http(s) URL of the .deb or .rpm", u)
		}
		if strings.ContainsAny(u, "'\n ") {
			return nil, fmt.Errorf("cloud-init: --package-url %q contains a quote, a space or a newline", u)
		}
		var install string
		switch {
		case strings.HasSuffix(u, ".deb"):
			install = "curl -fsSL --retry 5 -o /run/onramp.deb '" + u + "' && DEBIAN_FRONTEND=noninteractive apt-get install -y /run/onramp.deb && rm -f /run/onramp.deb"
		case strings.HasSuffix(u, ".rpm"):
			install = "curl -fsSL --retry 5 -o /run/onramp.rpm '" + u + "' && (dnf install -y /run/onramp.rpm || yum install -y /run/onramp.rpm) && rm -f /run/onramp.rpm"
		default:
			return nil, fmt.Errorf("cloud-init: --package-url %q: the name must end in .deb or .rpm", u)
		}
		doc.Packages = []string{"curl", "ca-certificates"}
		doc.Runcmd = append(doc.Runcmd, []string{"sh", "-c", install})
	}
	boot := []string{"onramp", "bootstrap", "--bundle", SeedDir, "--data-plane", o.DataPlane}
	if o.IP != "" {
		boot = append(boot, "--ip", o.IP)
	}
	doc.Runcmd = append(doc.Runcmd, boot, []string{"rm", "-rf", SeedDir})

	var buf bytes.Buffer
	buf.WriteString("#cloud-config\n# Puts this VM on the Istio mesh at first boot (written by onramp cloud-init).\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("cloud-init: %w", err)
	}
	enc.Close()
	if buf.Len() > MaxSize {
		return nil, fmt.Errorf("cloud-init: the user-data is %d bytes, more than the %d that EC2 accepts; shrink the bundle (root-cert.pem with fewer certificates)", buf.Len(), MaxSize)
	}
	return buf.Bytes(), nil
}
