package main

import (
	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/installer/cloudinit"
)

func newCloudInitCmd() *cobra.Command {
	var o cloudinit.Options
	cmd := &cobra.Command{
		Use:   "cloud-init --bundle DIR (--package-url URL | --apt-repo LINE) --data-plane none|proxy [flags]",
		Short: "Print #cloud-config user-data that puts a new VM on the mesh at first boot",
		Long: `Print #cloud-config user-data for a new VM: it installs the onramp package
(downloaded from --package-url, a .deb or .rpm, or from the apt source line
--apt-repo), writes the bundle (the istio-token 0600, root's only) and runs
onramp bootstrap. The bundle is checked first, as bootstrap will check it.
The output stays under 16 KiB, EC2's user-data limit, or the command fails.
The user-data holds the bundle's token: pass it only to the VM it is for.`,
		Example: `  onramp cloud-init --bundle ./vm-bundle --package-url https://example.com/onramp_0.1.0-1_amd64.deb --data-plane none > user-data
  cloud-init schema --config-file user-data`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&o.Bundle, "bundle", "", "the bundle `DIR`")
	cmd.Flags().StringVar(&o.PackageURL, "package-url", "", "http(s) `URL` of the onramp .deb or .rpm")
	cmd.Flags().StringVar(&o.AptRepo, "apt-repo", "", "one apt source `LINE` that has the onramp package")
	cmd.Flags().StringVar(&o.DataPlane, "data-plane", "", "`none` (no proxy on the VM) or proxy, passed to bootstrap")
	cmd.Flags().StringVar(&o.IP, "ip", "", "the VM's `IP` for its WorkloadEntry, passed to bootstrap")
	_ = cmd.MarkFlagRequired("bundle")
	_ = cmd.MarkFlagRequired("data-plane")
	_ = cmd.MarkFlagDirname("bundle")
	cmd.MarkFlagsOneRequired("package-url", "apt-repo")
	cmd.MarkFlagsMutuallyExclusive("package-url", "apt-repo")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if o.DataPlane != "none" && o.DataPlane != "proxy" {
			return usagef("--data-plane %q: want none or proxy", o.DataPlane)
		}
		data, err := cloudinit.UserData(o)
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(data)
		return err
	}
	return cmd
}
