package mesh

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
)

// Auto-allocation ranges, as istiod's.
var (
	vipRangeV4 = netip.MustParsePrefix("240.240.0.0/16")
	vipRangeV6 = netip.MustParsePrefix("2001:2::/48")
)

// vipPair is the auto-allocated addresses of one host.
type vipPair struct {
	V4 string `json:"ipv4,omitempty"`
	V6 string `json:"ipv6,omitempty"`
}

func (p vipPair) addrs() []netip.Addr {
	var out []netip.Addr
	for _, s := range []string{p.V4, p.V6} {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// vipState is the file at Options.StatePath.
type vipState struct {
	Version int                `json:"version"`
	Hosts   map[string]vipPair `json:"hosts"`
}

const vipStateVersion = 1

// loadVIPs reads the allocation state; a missing file is an empty state.
func loadVIPs(path string) (map[string]vipPair, error) {
	out := map[string]vipPair{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mesh: read VIP state: %w", err)
	}
	var st vipState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("mesh: VIP state %s is not valid JSON (%v); fix it, or delete it to allocate all VIPs afresh", path, err)
	}
	if st.Version != vipStateVersion {
		return nil, fmt.Errorf("mesh: VIP state %s has version %d, want %d; delete it to allocate afresh", path, st.Version, vipStateVersion)
	}
	usedV4, usedV6 := map[netip.Addr]string{}, map[netip.Addr]string{}
	for host, p := range st.Hosts {
		for _, c := range []struct {
			s    string
			r    netip.Prefix
			used map[netip.Addr]string
		}{{p.V4, vipRangeV4, usedV4}, {p.V6, vipRangeV6, usedV6}} {
			if c.s == "" {
				continue
			}
			a, err := netip.ParseAddr(c.s)
			if err != nil || !c.r.Contains(a) {
				return nil, fmt.Errorf("mesh: VIP state %s: host %s has address %q outside %s; fix or delete the file", path, host, c.s, c.r)
			}
			if other, dup := c.used[a]; dup {
				return nil, fmt.Errorf("mesh: VIP state %s: %s is allocated to both %s and %s; fix or delete the file", path, a, other, host)
			}
			c.used[a] = host
		}
		out[host] = p
	}
	return out, nil
}

// saveVIPs writes the state atomically.
func saveVIPs(path string, hosts map[string]vipPair) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(vipState{Version: vipStateVersion, Hosts: hosts}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("mesh: create VIP state directory: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("mesh: VIP state: %w", err)
	}
	return nil
}

// allocateVIPs returns a copy of prev with an address pair for every host in
// want that has none, taking the lowest free address of each range; hosts are
// served in sorted order so a fresh state is deterministic. Allocations of
// hosts no longer configured are kept so a host that comes back gets its old
// addresses. changed reports whether anything was added.
func allocateVIPs(prev map[string]vipPair, want []string) (out map[string]vipPair, changed bool, err error) {
	out = maps.Clone(prev)
	if out == nil {
		out = map[string]vipPair{}
	}
	want = slices.Clone(want)
	slices.Sort(want)
	want = slices.Compact(want)
	usedV4, usedV6 := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, p := range out {
		if a, err := netip.ParseAddr(p.V4); err == nil {
			usedV4[a] = true
		}
		if a, err := netip.ParseAddr(p.V6); err == nil {
			usedV6[a] = true
		}
	}
	next4, next6 := vipRangeV4.Addr().Next(), vipRangeV6.Addr().Next()
	for _, host := range want {
		p := out[host]
		if p.V4 != "" && p.V6 != "" {
			continue
		}
		if p.V4 == "" {
			a, ok := lowestFree(vipRangeV4, &next4, usedV4)
			if !ok {
				return nil, false, fmt.Errorf("mesh: no free VIP left in %s for %s; remove unused hosts from the VIP state", vipRangeV4, host)
			}
			p.V4 = a.String()
		}
		if p.V6 == "" {
			a, ok := lowestFree(vipRangeV6, &next6, usedV6)
			if !ok {
				return nil, false, fmt.Errorf("mesh: no free VIP left in %s for %s", vipRangeV6, host)
			}
			p.V6 = a.String()
		}
		out[host] = p
		changed = true
	}
	return out, changed, nil
}

// lowestFree returns the first address from *next on that is unused and
// marks it used. The network's first address is never handed out.
func lowestFree(r netip.Prefix, next *netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	for a := *next; a.IsValid() && r.Contains(a); a = a.Next() {
		if !used[a] {
			used[a] = true
			*next = a.Next()
			return a, true
		}
	}
	return netip.Addr{}, false
}
