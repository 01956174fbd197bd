package nametable

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the snapshot for people: a summary line, then one line per
// host with its registry, addresses and aliases.
func (s Snapshot) WriteText(w io.Writer) {
	if s.ClusterDomain == "" {
		// Only names are known (an agent that serves the list of names).
		fmt.Fprintf(w, "%d names answered\n", s.Names)
		for _, e := range s.Entries {
			fmt.Fprintln(w, e.Name)
		}
		return
	}
	fmt.Fprintf(w, "%d hosts, %d names answered; namespace %q, cluster domain %q, search %v, TTL %ds\n",
		len(s.Entries), s.Names, s.Namespace, s.ClusterDomain, s.Search, s.TTLSeconds)
	if len(s.Entries) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tREGISTRY\tADDRESSES\tALIASES")
		for _, e := range s.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Registry, orDash(strings.Join(e.IPs, ",")), orDash(strings.Join(e.Aliases, ",")))
		}
		tw.Flush()
	}
	for _, sk := range s.Skipped {
		fmt.Fprintln(w, "not served: "+sk.String())
	}
	for _, h := range s.Withheld {
		fmt.Fprintf(w, "withheld (data plane %s): %s %s, %d lookups forwarded upstream\n", s.DataPlane, h.Host, strings.Join(h.VIPs, ","), h.Lookups)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
