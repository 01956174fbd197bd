package nametable

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
)

// Skip is one part of a table that the index does not serve.
type Skip struct {
	// Host is the entry's key as the control plane sent it.
	Host string `json:"host"`
	// Address is the address dropped from the entry; empty when the
	// problem is the entry itself (its name, or its short names).
	Address string `json:"address,omitempty"`
	// Entry is true when the entry as a whole is not served: its name is
	// not a DNS name, or it was left with no address.
	Entry bool `json:"entry,omitempty"`
	// Reason says why, for the operator.
	Reason string `json:"reason"`
}

func (s Skip) String() string {
	switch {
	case s.Address != "":
		return fmt.Sprintf("entry %q: address %q dropped: %s", s.Host, s.Address, s.Reason)
	case s.Entry:
		return fmt.Sprintf("entry %q skipped: %s", s.Host, s.Reason)
	}
	return fmt.Sprintf("entry %q: %s", s.Host, s.Reason)
}

// Skipped returns what of the table the index does not serve, sorted by
// host: each dropped address, and each entry skipped as a whole. It is
// empty for a table served entirely.
func (ix *Index) Skipped() []Skip {
	if ix == nil {
		return nil
	}
	return slices.Clone(ix.skipped)
}

// Withheld is a name the index does not answer because its only addresses
// are auto-allocated VIPs and nothing on the host carries traffic to them
// (DataPlaneNone). Queries for it go upstream, as if the mesh did not know
// it.
type Withheld struct {
	// Host is the entry's name, with a trailing dot ("*.suffix." for a
	// wildcard).
	Host string `json:"host"`
	// VIPs are the addresses istiod allocated.
	VIPs []string `json:"vips"`
	// Lookups counts the A and AAAA queries for the name (or one of its
	// Kubernetes short names) since the Lookups counter was made; lookups
	// of names under a withheld wildcard are not counted.
	Lookups uint64 `json:"lookups"`
}

// Withheld returns the withheld names, sorted, with their lookup counts.
func (ix *Index) Withheld() []Withheld {
	if ix == nil {
		return nil
	}
	out := slices.Clone(ix.withheld)
	for i := range out {
		out[i].Lookups = ix.lookups.count(out[i].Host)
	}
	return out
}

// DataPlane returns the data plane the index was built for.
func (ix *Index) DataPlane() DataPlane {
	if ix == nil {
		return ""
	}
	return ix.dataPlane
}

// withhold records e as withheld, with its names keyed for counting.
func (ix *Index) withhold(e parsedEntry) {
	host := e.name + "."
	w := Withheld{Host: host}
	for _, a := range dedupe(e.vips) {
		w.VIPs = append(w.VIPs, a.String())
	}
	ix.withheld = append(ix.withheld, w) // entries come sorted by key
	if e.wild {
		return
	}
	if ix.held == nil {
		ix.held = map[string]*atomic.Uint64{}
	}
	c := ix.lookups.counter(host)
	for _, n := range append([]string{e.name}, e.aliases...) {
		if k := string(appendWire(nil, n)); ix.held[k] == nil {
			ix.held[k] = c
		}
	}
}

// countWithheld counts a query for q (a wire name without the final zero)
// when it is withheld.
func (ix *Index) countWithheld(q []byte) {
	if c := ix.held[string(q)]; c != nil {
		c.Add(1)
		ix.lookups.total.Add(1)
	}
}

// Lookups counts queries for withheld names. Give the same Lookups to every
// Build (Options.Lookups) so that counts carry over from one table to the
// next. It is safe for concurrent use; the zero value is ready.
type Lookups struct {
	mu    sync.Mutex
	names map[string]*atomic.Uint64 // host with a trailing dot -> queries
	total atomic.Uint64
}

// counter returns the count of host, creating it.
func (l *Lookups) counter(host string) *atomic.Uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.names == nil {
		l.names = map[string]*atomic.Uint64{}
	}
	c := l.names[host]
	if c == nil {
		c = new(atomic.Uint64)
		l.names[host] = c
	}
	return c
}

func (l *Lookups) count(host string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.names[host]; c != nil {
		return c.Load()
	}
	return 0
}

// Total returns the queries for withheld names counted so far.
func (l *Lookups) Total() uint64 { return l.total.Load() }

// WritePrometheus writes the index's metrics in the Prometheus text
// exposition format:
//
//	onramp_nametable_dropped_addresses   addresses of the current table not served (see Skipped)
//	onramp_nametable_skipped_entries     entries of the current table not served at all
//	onramp_nametable_withheld_names      names withheld for want of a data plane (see Withheld)
//	onramp_nametable_withheld_lookups_total  queries for withheld names (forwarded upstream)
//
// A nil index writes zeros.
func (ix *Index) WritePrometheus(w io.Writer) {
	var dropped, skipped, withheld int
	var lookups uint64
	if ix != nil {
		for _, s := range ix.skipped {
			switch {
			case s.Address != "":
				dropped++
			case s.Entry:
				skipped++
			}
		}
		withheld = len(ix.withheld)
		lookups = ix.lookups.Total()
	}
	fmt.Fprintf(w, "# HELP onramp_nametable_dropped_addresses Addresses of the current name table that are not served (onramp status lists them).\n# TYPE onramp_nametable_dropped_addresses gauge\nonramp_nametable_dropped_addresses %d\n", dropped)
	fmt.Fprintf(w, "# HELP onramp_nametable_skipped_entries Entries of the current name table that are not served at all.\n# TYPE onramp_nametable_skipped_entries gauge\nonramp_nametable_skipped_entries %d\n", skipped)
	fmt.Fprintf(w, "# HELP onramp_nametable_withheld_names Names whose only addresses are auto-allocated VIPs, not answered because no data plane carries them.\n# TYPE onramp_nametable_withheld_names gauge\nonramp_nametable_withheld_names %d\n", withheld)
	fmt.Fprintf(w, "# HELP onramp_nametable_withheld_lookups_total Queries for withheld names, forwarded upstream.\n# TYPE onramp_nametable_withheld_lookups_total counter\nonramp_nametable_withheld_lookups_total %d\n", lookups)
}
