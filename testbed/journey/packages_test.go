package journey

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of the two packages built for the suite: the upgrade goes from
// prevVersion to curVersion. Both are built from this tree, with the
// version stamped into the binary and the package.
const (
	prevVersion = "0.0.9"
	curVersion  = "0.1.0"
)

// pkgs names the built packages.
type pkgs struct {
	Dir             string // bound into the machines as /dist
	PrevDeb, CurDeb string // file names in Dir
	PrevRPM, CurRPM string
	Onramp          string // the static binary of curVersion, on the host
}

// buildPackages builds the static binary, the man pages and completions, and
// a .deb and .rpm of each version with the repository's own nfpm.yaml.
func buildPackages(ctx context.Context, repo, out string) (pkgs, error) {
	p := pkgs{Dir: filepath.Join(out, "dist")}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return p, err
	}
	cfg, err := os.ReadFile(filepath.Join(repo, "packaging", "nfpm.yaml"))
	if err != nil {
		return p, err
	}
	for _, v := range []string{prevVersion, curVersion} {
		build := filepath.Join(out, "build-"+v)
		bin := filepath.Join(build, "onramp")
		docs := filepath.Join(build, "docs")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+v, "-o", bin, "./agent/cmd/onramp")
		cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if o, err := cmd.CombinedOutput(); err != nil {
			return p, fmt.Errorf("go build: %v\n%s", err, o)
		}
		if o, err := exec.CommandContext(ctx, bin, "gen-docs", "--dir", docs, "--gzip").CombinedOutput(); err != nil {
			return p, fmt.Errorf("gen-docs: %v\n%s", err, o)
		}
		c := strings.ReplaceAll(string(cfg), "./bin/pkg/onramp", bin)
		c = strings.ReplaceAll(c, "./bin/docs", docs)
		cfgPath := filepath.Join(build, "nfpm.yaml")
		if err := os.WriteFile(cfgPath, []byte(c), 0o644); err != nil {
			return p, err
		}
		for _, packager := range []string{"deb", "rpm"} {
			cmd := exec.CommandContext(ctx, "go", "tool", "nfpm", "package", "--config", cfgPath, "--packager", packager, "--target", p.Dir+"/")
			cmd.Dir, cmd.Env = repo, append(os.Environ(), "VERSION="+v, "ARCH=amd64")
			if o, err := cmd.CombinedOutput(); err != nil {
				return p, fmt.Errorf("nfpm %s %s: %v\n%s", packager, v, err, o)
			}
		}
		if v == curVersion {
			p.Onramp = bin
		}
	}
	p.PrevDeb, p.CurDeb = "onramp_"+prevVersion+"-1_amd64.deb", "onramp_"+curVersion+"-1_amd64.deb"
	p.PrevRPM, p.CurRPM = "onramp-"+prevVersion+"-1.x86_64.rpm", "onramp-"+curVersion+"-1.x86_64.rpm"
	return p, nil
}
