package redirect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

var errPerm = unix.EPERM

// DefaultTable is the name of the nftables table (family inet) onramp owns.
const DefaultTable = "onramp"

// DefaultCheckInterval is how often the nftables backend checks that its
// table is still in place (a firewall reload or `nft flush ruleset` takes
// it out).
const DefaultCheckInterval = time.Second

// NftablesConfig configures the nftables backend.
type NftablesConfig struct {
	// StateDir is the agent's state directory; the record goes under
	// StateDir/redirect. Empty keeps no record (tests).
	StateDir string
	// Table is the table's name; DefaultTable when empty.
	Table string
	// Host, when set, is followed for the nameservers of /etc/resolv.conf
	// while Run runs; SetNameservers sets them otherwise.
	Host *resolvconf.Watcher
	// Nameservers are the initial resolv.conf nameservers.
	Nameservers []netip.AddrPort
	// NetNS, when not zero, is a network namespace fd to program (tests).
	NetNS int
	// CheckInterval is how often Run checks the table; DefaultCheckInterval when zero.
	CheckInterval time.Duration
	Log           hclog.Logger
}

// nft is the nftables backend: one inet table of onramp's own with a nat
// chain on the output hook,
//
//	table inet onramp {
//		set dns4 { type ipv4_addr; elements = { <resolv.conf's IPv4 nameservers> } }
//		set dns6 { type ipv6_addr; elements = { <resolv.conf's IPv6 nameservers> } }
//		chain output {
//			type nat hook output priority -100; policy accept;
//			meta mark 0x15053 return                      # the proxy's own upstream queries
//			meta nfproto ipv4 ip daddr @dns4 meta l4proto udp th dport 53 counter redirect to :15053
//			... the same for tcp, and for ipv6 with @dns6 to [::1]:15053
//		}
//	}
//
// With CaptureAll the daddr matches are left out: all port-53 traffic is
// redirected. The proxy's upstream sockets carry the mark (SO_MARK), so an
// agent running as root does not exempt every root process, as an skuid
// rule would. Priority -100 is dstnat (nft 1.0.6 refuses the name on the
// output hook). /etc/resolv.conf is never touched: applications see no
// change.
//
// The whole table is written in one netlink batch (add, delete, add and
// fill), so it is replaced atomically and re-applying is idempotent.
type nft struct {
	cfg NftablesConfig
	log hclog.Logger

	mu      sync.Mutex
	plan    *Plan
	servers []netip.AddrPort
	state   State
}

// NewNftables returns the nftables backend.
func NewNftables(cfg NftablesConfig) Backend {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	return &nft{cfg: cfg, log: cfg.Log, servers: slices.Clone(cfg.Nameservers), state: State{Backend: Nftables, Table: cfg.Table}}
}

func (n *nft) Name() string { return Nftables }

func (n *nft) conn() (*nftables.Conn, error) { return nftConn(n.cfg.NetNS) }

func nftConn(netns int) (*nftables.Conn, error) {
	if netns != 0 {
		return nftables.New(nftables.WithNetNSFd(netns))
	}
	return nftables.New()
}

// Apply writes the table for p and the current nameservers.
func (n *nft) Apply(ctx context.Context, p Plan) error {
	p = p.Normalize()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.plan = &p
	return n.applyLocked()
}

// SetNameservers replaces the addresses whose port-53 traffic is
// redirected, and re-applies when a plan is in place.
func (n *nft) SetNameservers(servers []netip.AddrPort) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if slices.Equal(servers, n.servers) {
		return nil
	}
	n.servers = slices.Clone(servers)
	if n.plan == nil {
		return nil
	}
	n.log.Info("resolv.conf nameservers changed; updating the redirect", "nameservers", fmt.Sprint(servers))
	return n.applyLocked()
}

// redirected returns the nameservers to redirect: those of resolv.conf that
// are not the proxy itself.
func (n *nft) redirected() (v4, v6 []netip.Addr) {
	for _, s := range n.servers {
		a := s.Addr().Unmap()
		if s.Port() != 53 && s.Port() != 0 {
			continue
		}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	return slices.Compact(v4), slices.Compact(v6)
}

func (n *nft) applyLocked() error {
	p := *n.plan
	v4, v6 := n.redirected()
	st := State{
		Backend: Nftables, Table: n.cfg.Table, Listen: addrStrings(p.Listen), Domains: p.Domains,
		CaptureAll: p.CaptureAll, Mark: p.Mark, Repairs: n.state.Repairs,
	}
	for _, a := range append(slices.Clone(v4), v6...) {
		st.Nameservers = append(st.Nameservers, a.String())
	}
	if err := record(n.cfg.StateDir, st); err != nil {
		return err
	}
	c, err := n.conn()
	if err != nil {
		return n.failLocked(st, fmt.Errorf("redirect: nftables: %w", err))
	}
	if err := writeTable(c, n.cfg.Table, p, v4, v6); err != nil {
		return n.failLocked(st, err)
	}
	st.InPlace, st.Applied = true, time.Now()
	n.state = st
	return record(n.cfg.StateDir, st)
}

func (n *nft) failLocked(st State, err error) error {
	st.LastError = err.Error()
	n.state = st
	return err
}

// ports returns the proxy's port per family (zero when it does not
// listen on that family's loopback).
func ports(listen []netip.AddrPort) (p4, p6 uint16) {
	for _, l := range listen {
		a := l.Addr().Unmap()
		if a.Is4() && p4 == 0 && (a.IsLoopback() || a.IsUnspecified()) {
			p4 = l.Port()
		}
		if a.Is6() && p6 == 0 && (a.IsLoopback() || a.IsUnspecified()) {
			p6 = l.Port()
		}
	}
	return p4, p6
}

// ruleCount is how many rules writeTable writes for p.
func ruleCount(p Plan) int {
	p4, p6 := ports(p.Listen)
	n := 1
	if p4 != 0 {
		n += 2
	}
	if p6 != 0 {
		n += 2
	}
	return n
}

// writeTable replaces the table in one batch.
func writeTable(c *nftables.Conn, name string, p Plan, v4, v6 []netip.Addr) error {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
	// add + delete + add: the table exists, is emptied and rebuilt in the
	// same transaction, whether or not it was there before.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	set4 := &nftables.Set{Table: t, Name: "dns4", KeyType: nftables.TypeIPAddr}
	set6 := &nftables.Set{Table: t, Name: "dns6", KeyType: nftables.TypeIP6Addr}
	var e4, e6 []nftables.SetElement
	for _, a := range v4 {
		e4 = append(e4, nftables.SetElement{Key: a.AsSlice()})
	}
	for _, a := range v6 {
		e6 = append(e6, nftables.SetElement{Key: a.AsSlice()})
	}
	if err := c.AddSet(set4, e4); err != nil {
		return fmt.Errorf("redirect: nftables set dns4: %w", err)
	}
	if err := c.AddSet(set6, e6); err != nil {
		return fmt.Errorf("redirect: nftables set dns6: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityRef(-100), Policy: &accept,
	})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(p.Mark)},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	p4, p6 := ports(p.Listen)
	fam := []struct {
		proto byte
		set   *nftables.Set
		off   uint32
		size  uint32
		port  uint16
	}{
		{unix.NFPROTO_IPV4, set4, 16, 4, p4},
		{unix.NFPROTO_IPV6, set6, 24, 16, p6},
	}
	for _, f := range fam {
		if f.port == 0 {
			continue
		}
		for _, l4 := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			ex := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
			}
			if !p.CaptureAll {
				ex = append(ex,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.off, Len: f.size},
					&expr.Lookup{SourceRegister: 1, SetName: f.set.Name, SetID: f.set.ID})
			}
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)},
				&expr.Counter{},
				&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(f.port)},
				&expr.Redir{RegisterProtoMin: 1},
			)
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("redirect: nftables: write table inet %s: %w", name, err)
	}
	return nil
}

// intact reports whether the table is in place as written for p.
func (n *nft) intact(p Plan, v4, v6 int) (bool, error) {
	c, err := n.conn()
	if err != nil {
		return false, err
	}
	t, err := c.ListTableOfFamily(n.cfg.Table, nftables.TableFamilyINet)
	if err != nil || t == nil {
		return false, nil
	}
	ch, err := c.ListChain(t, "output")
	if err != nil || ch == nil {
		return false, nil
	}
	rules, err := c.GetRules(t, ch)
	if err != nil {
		return false, err
	}
	if len(rules) != ruleCount(p) {
		return false, nil
	}
	for name, want := range map[string]int{"dns4": v4, "dns6": v6} {
		s, err := c.GetSetByName(t, name)
		if err != nil || s == nil {
			return false, nil
		}
		el, err := c.GetSetElements(s)
		if err != nil || len(el) != want {
			return false, nil
		}
	}
	return true, nil
}

// Run keeps the table in place until ctx ends: it follows the nameservers
// of cfg.Host and restores the table when it is gone or changed (a ruleset
// flush), logging each repair.
func (n *nft) Run(ctx context.Context) error {
	if n.cfg.Host != nil {
		defer n.cfg.Host.Subscribe(func(h resolvconf.Host) {
			if h.ResolvErr != nil {
				return
			}
			go n.SetNameservers(resolvNameservers(n.cfg.Host.Paths))
		})()
	}
	t := time.NewTicker(n.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			n.check()
		}
	}
}

// resolvNameservers reads the nameserver lines of the watched resolv.conf
// itself (Host.Upstreams are the proxy's upstreams, filtered and, behind
// resolved's stub, taken from another file).
func resolvNameservers(p resolvconf.Paths) []netip.AddrPort {
	path := p.ResolvConf
	if path == "" {
		path = resolvconf.ResolvConfPath
	}
	c, err := resolvconf.ParseFile(path)
	if err != nil {
		return nil
	}
	return c.Servers
}

func (n *nft) check() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.plan == nil {
		return
	}
	v4, v6 := n.redirected()
	ok, err := n.intact(*n.plan, len(v4), len(v6))
	if err != nil {
		n.log.Warn("cannot check the redirect's nftables table", "table", n.cfg.Table, "error", err)
		return
	}
	if ok {
		return
	}
	n.state.Repairs++
	n.log.Warn("the redirect's nftables table was removed or changed (a ruleset flush or a firewall reload?); restoring it", "table", "inet "+n.cfg.Table, "repairs", n.state.Repairs)
	if err := n.applyLocked(); err != nil {
		n.log.Error("cannot restore the redirect's nftables table", "error", err)
	}
}

func (n *nft) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.Clone()
}

// Remove deletes the table and the record.
func (n *nft) Remove(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.plan = nil
	c, err := n.conn()
	if err == nil {
		err = deleteTable(c, n.cfg.Table)
	}
	if err != nil {
		n.state.LastError = err.Error()
		return err
	}
	n.state = State{Backend: Nftables, Table: n.cfg.Table, Repairs: n.state.Repairs}
	return forget(n.cfg.StateDir)
}

// deleteTable deletes table inet name if it exists (c nil: the current
// network namespace).
func deleteTable(c *nftables.Conn, name string) error {
	if name == "" {
		name = DefaultTable
	}
	if c == nil {
		var err error
		if c, err = nftables.New(); err != nil {
			return fmt.Errorf("redirect: nftables: %w", err)
		}
	}
	t, err := c.ListTableOfFamily(name, nftables.TableFamilyINet)
	if err != nil || t == nil {
		if err != nil && errors.Is(err, unix.EPERM) {
			return fmt.Errorf("redirect: nftables: %w (needs CAP_NET_ADMIN: run as root)", err)
		}
		return nil // not there
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("redirect: nftables: delete table inet %s: %w", name, err)
	}
	return nil
}
