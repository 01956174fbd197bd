package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"

	"github.com/onramp-mesh/onramp/agent/status"
)

// NftablesInspector is the Inspector of the nftables backend: it reads, over
// netlink in the current network namespace, whether onramp's table (family
// inet) is there with its rules, and which addresses its sets redirect. It
// needs CAP_NET_ADMIN; without it, or for another backend, it returns
// ErrNotInspected.
func NftablesInspector(_ context.Context, rv status.Redirect) (Live, error) {
	if rv.Backend != "nftables" || rv.Table == "" {
		return Live{}, ErrNotInspected
	}
	c, err := nftables.New()
	if err != nil {
		return Live{}, fmt.Errorf("%w: %v", ErrNotInspected, err)
	}
	defer c.CloseLasting()
	t, err := c.ListTableOfFamily(rv.Table, nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return Live{}, fmt.Errorf("%w: reading nftables needs CAP_NET_ADMIN (run doctor as root): %v", ErrNotInspected, err)
		}
		// The kernel answers ENOENT for a missing table.
		return Live{Present: false, Detail: fmt.Sprintf("table inet %s is not in the ruleset (%v)", rv.Table, err)}, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return Live{}, fmt.Errorf("%w: list chains: %v", ErrNotInspected, err)
	}
	rules := 0
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != t.Name {
			continue
		}
		rs, err := c.GetRules(t, ch)
		if err != nil {
			return Live{}, fmt.Errorf("%w: list rules: %v", ErrNotInspected, err)
		}
		rules += len(rs)
	}
	if rules == 0 {
		return Live{Present: false, Detail: fmt.Sprintf("table inet %s has no rules", rv.Table)}, nil
	}
	live := Live{Present: true}
	sets, err := c.GetSets(t)
	if err == nil {
		for _, s := range sets {
			els, err := c.GetSetElements(s)
			if err != nil {
				continue
			}
			for _, e := range els {
				if a, ok := netip.AddrFromSlice(e.Key); ok && !e.IntervalEnd {
					live.Redirected = append(live.Redirected, a.Unmap())
				}
			}
		}
	}
	live.Detail = fmt.Sprintf("table inet %s with %d rules, redirecting %v", rv.Table, rules, live.Redirected)
	return live, nil
}
