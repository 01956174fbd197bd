package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/xds"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=abc1234"
var (
	version = "dev"
	commit  = ""
)

// versionInfo is what `onramp version` reports.
type versionInfo struct {
	Version      string `json:"version"`
	Commit       string `json:"commit,omitempty"`
	GoVersion    string `json:"goVersion"`
	Platform     string `json:"platform"`
	IstioVersion string `json:"istioVersion"` // the ISTIO_VERSION sent to istiod when the bundle names none
}

func currentVersion() versionInfo {
	return versionInfo{
		Version:      version,
		Commit:       commit,
		GoVersion:    runtime.Version(),
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
		IstioVersion: xds.DefaultIstioVersion,
	}
}

// versionString is the one line of `onramp --version`.
func versionString() string {
	v := currentVersion()
	s := v.Version
	if v.Commit != "" {
		s += " (" + v.Commit + ")"
	}
	return s
}

func (v versionInfo) writeText(w io.Writer) {
	fmt.Fprintf(w, "onramp %s\n", v.Version)
	if v.Commit != "" {
		fmt.Fprintf(w, "commit:        %s\n", v.Commit)
	}
	fmt.Fprintf(w, "go:            %s %s\n", v.GoVersion, v.Platform)
	fmt.Fprintf(w, "istio version: %s (reported to istiod unless the bundle sets ISTIO_META_ISTIO_VERSION)\n", v.IstioVersion)
}

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version [flags]",
		Short: "Print the version",
		Long: `Print onramp's version and commit, the Go toolchain that built it, and the
Istio version it reports to istiod in its node metadata.`,
		Example: `  onramp version
  onramp version -o json`,
		Args: noArgs,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		v := currentVersion()
		return out.print(cmd.OutOrStdout(), v, v.writeText)
	}
	return cmd
}
