package identity

import (
	"context"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

const testSub = "system:serviceaccount:vm-ns:vm-sa"

func testConfig(ca *testCA, dir string, token string) Config {
	return Config{
		CAAddress:      ca.addr,
		ServerName:     "istiod.istio-system.svc",
		Roots:          ca.root.pool,
		ClusterID:      "cluster1",
		TrustDomain:    "cluster.local",
		Namespace:      "vm-ns",
		ServiceAccount: "vm-sa",
		Token:          func() (string, error) { return token, nil },
		Validity:       time.Hour,
		StateDir:       dir,
		RetryBackoff:   10 * time.Millisecond,
		CallTimeout:    5 * time.Second,
	}
}

func newTestManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func startManager(t *testing.T, cfg Config) (*Manager, error) {
	t.Helper()
	m := newTestManager(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		m.Wait() // the rotation writes the test's directory until it ends
	})
	return m, m.Start(ctx)
}

func TestBootstrapWithTokenThenRenewOverMTLS(t *testing.T) {
	ca := startCA(t)
	dir := t.TempDir()
	tok := testToken(testSub, time.Now().Add(time.Hour))
	cfg := testConfig(ca, dir, tok)
	cfg.Validity = 4 * time.Second
	m, err := startManager(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Ready():
	default:
		t.Fatal("Ready not closed after Start")
	}
	first := m.Status()
	if first.Source != "token" || first.SPIFFEID != "spiffe://cluster.local/ns/vm-ns/sa/vm-sa" {
		t.Errorf("status after bootstrap: %+v", first)
	}
	if life := first.NotAfter.Sub(first.NotBefore); life != 4*time.Second {
		t.Errorf("lifetime %v, want the requested 4s", life)
	}
	cert1, err := m.ClientCertificate()
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(15 * time.Second)
	for m.Status().Renewals < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	calls := ca.callLog()
	if len(calls) < 2 {
		t.Fatalf("no renewal within 15s; calls %+v, status %+v", calls, m.Status())
	}
	boot, renew := calls[0], calls[1]
	if len(boot.auth) != 1 || boot.auth[0] != "Bearer "+tok {
		t.Errorf("bootstrap authorization = %q, want the Bearer token", boot.auth)
	}
	if len(boot.clusterID) != 1 || boot.clusterID[0] != "cluster1" {
		t.Errorf("bootstrap ClusterID = %q", boot.clusterID)
	}
	if len(boot.peerURIs) != 0 {
		t.Errorf("bootstrap presented a client certificate %q", boot.peerURIs)
	}
	if boot.validity != 4 {
		t.Errorf("validity_duration = %d, want 4", boot.validity)
	}
	if len(renew.auth) != 0 {
		t.Errorf("renewal carried authorization %q; it must authenticate by mTLS only", renew.auth)
	}
	if len(renew.peerURIs) != 1 || renew.peerURIs[0] != first.SPIFFEID {
		t.Errorf("renewal peer identity %q, want %s", renew.peerURIs, first.SPIFFEID)
	}
	if len(renew.clusterID) != 1 || renew.clusterID[0] != "cluster1" {
		t.Errorf("renewal ClusterID = %q", renew.clusterID)
	}
	// Renewal happens at 50% ±1% of the lifetime (plus scheduling delay).
	life := first.NotAfter.Sub(first.NotBefore)
	lo := first.NotBefore.Add(life * 49 / 100)
	hi := first.NotBefore.Add(life*51/100 + 500*time.Millisecond)
	if renew.at.Before(lo) || renew.at.After(hi) {
		t.Errorf("renewal at %v, want between %v and %v", renew.at, lo, hi)
	}
	if !first.NextRotation.After(lo.Add(-time.Millisecond)) || first.NextRotation.After(first.NotBefore.Add(life*51/100)) {
		t.Errorf("NextRotation %v outside 49..51%% of [%v, %v]", first.NextRotation, first.NotBefore, first.NotAfter)
	}
	cert2, _ := m.ClientCertificate()
	if cert2 == cert1 || cert2.Leaf.SerialNumber.Cmp(cert1.Leaf.SerialNumber) == 0 {
		t.Error("ClientCertificate did not change after renewal")
	}
	checkStateDir(t, dir, ca)
}

func checkStateDir(t *testing.T, dir string, ca *testCA) {
	t.Helper()
	modes := map[string]os.FileMode{FileKey: 0o600, FileCertChain: 0o644, FileRoot: 0o644}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	s := &store{dir: dir}
	c, err := s.load(ca.root.pool, time.Now())
	if err != nil {
		t.Fatalf("stored identity does not load: %v", err)
	}
	if !c.root.Equal(ca.root.cert) {
		t.Error("stored root is not the mesh root")
	}
	ents, _ := os.ReadDir(dir)
	gens := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), genPrefix) {
			gens++
		}
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if gens != 1 {
		t.Errorf("%d generations on disk, want 1", gens)
	}
}

func TestWrongRootRejected(t *testing.T) {
	ca := startCA(t)
	ca.signer = newAuthority(t, "some other mesh")
	dir := t.TempDir()
	_, err := startManager(t, testConfig(ca, dir, testToken(testSub, time.Now().Add(time.Hour))))
	if err == nil || !strings.Contains(err.Error(), "bundle root") {
		t.Fatalf("Start = %v, want a wrong-root error", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, FileKey)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected certificate left %s on disk", FileKey)
	}
}

func TestShortChainRejected(t *testing.T) {
	ca := startCA(t)
	ca.short = true
	_, err := startManager(t, testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(time.Hour))))
	if err == nil || !strings.Contains(err.Error(), "returned 1 certificate(s)") {
		t.Fatalf("Start = %v, want a short-chain error", err)
	}
}

func TestExpiredTokenStartsWithStoredCert(t *testing.T) {
	ca := startCA(t)
	dir := t.TempDir()
	if _, err := startManager(t, testConfig(ca, dir, testToken(testSub, time.Now().Add(time.Hour)))); err != nil {
		t.Fatal(err)
	}
	// "Reboot": a new manager, the token long expired.
	m, err := startManager(t, testConfig(ca, dir, testToken(testSub, time.Now().Add(-time.Hour))))
	if err != nil {
		t.Fatalf("Start with a valid stored cert and an expired token: %v", err)
	}
	if st := m.Status(); st.Source != "stored" || st.SPIFFEID == "" {
		t.Errorf("status %+v, want the stored certificate", st)
	}
	if n := len(ca.callLog()); n != 1 {
		t.Errorf("CA called %d times, want only the first bootstrap", n)
	}
}

func TestBothExpiredNeedsRebootstrap(t *testing.T) {
	ca := startCA(t)
	dir := t.TempDir()
	if _, err := startManager(t, testConfig(ca, dir, testToken(testSub, time.Now().Add(time.Hour)))); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(3 * time.Hour) // past both the 1h cert and the 1h token
	cfg := testConfig(ca, dir, testToken(testSub, time.Now().Add(time.Hour)))
	cfg.Now = func() time.Time { return later }
	_, err := startManager(t, cfg)
	if !errors.Is(err, ErrRebootstrap) {
		t.Fatalf("Start = %v, want ErrRebootstrap", err)
	}
	for _, want := range []string{"stored certificate expired", "token expired", "onramp run --bundle DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	// Nothing stored and the token expired.
	_, err = startManager(t, testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(-time.Minute))))
	if !errors.Is(err, ErrRebootstrap) || !strings.Contains(err.Error(), "no certificate is stored") {
		t.Errorf("Start = %v, want ErrRebootstrap for an empty state dir", err)
	}
	if n := len(ca.callLog()); n != 1 {
		t.Errorf("CA called %d times; an expired token must not be sent", n)
	}
}

func TestTokenRefusedByCA(t *testing.T) {
	ca := startCA(t)
	_, err := startManager(t, testConfig(ca, t.TempDir(), testToken("not-a-service-account", time.Now().Add(time.Hour))))
	if !errors.Is(err, ErrRebootstrap) || !strings.Contains(err.Error(), "refused the bundle token") {
		t.Fatalf("Start = %v, want ErrRebootstrap naming the refused token", err)
	}
}

func TestUnavailableIsRetried(t *testing.T) {
	ca := startCA(t)
	ca.unavail = 3
	m, err := startManager(t, testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ca.callLog()); n != 4 {
		t.Errorf("%d calls, want 3 Unavailable then 1 success", n)
	}
	if st := m.Status(); st.LastError != "" {
		t.Errorf("LastError %q after success", st.LastError)
	}
	// With the CA down for good, Start gives up when its context ends.
	ca.unavail = 1 << 30
	m2 := newTestManager(t, testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(time.Hour))))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := m2.Start(ctx); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Errorf("Start = %v, want a give-up error", err)
	}
	if m2.Status().LastError == "" {
		t.Error("LastError not recorded")
	}
}

func TestMismatchedStoredKeyIsReplaced(t *testing.T) {
	ca := startCA(t)
	dir := t.TempDir()
	tok := testToken(testSub, time.Now().Add(time.Hour))
	if _, err := startManager(t, testConfig(ca, dir, tok)); err != nil {
		t.Fatal(err)
	}
	other, _ := newKey(KeyECDSA)
	s := &store{dir: dir}
	c, _ := s.load(ca.root.pool, time.Now())
	c.key, c.keyPEM = other, nil
	if err := s.save(c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.load(ca.root.pool, time.Now()); err == nil || !strings.Contains(err.Error(), "not for this key") {
		t.Fatalf("load of a mismatched pair = %v", err)
	}
	m, err := startManager(t, testConfig(ca, dir, tok))
	if err != nil {
		t.Fatal(err)
	}
	if m.Status().Source != "token" {
		t.Errorf("source %q, want a fresh bootstrap", m.Status().Source)
	}
}

func TestRSAKey(t *testing.T) {
	ca := startCA(t)
	cfg := testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(time.Hour)))
	cfg.KeyType = KeyRSA
	m, err := startManager(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.ClientCertificate()
	if k, ok := c.Leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("leaf key %T, want RSA-2048", c.Leaf.PublicKey)
	}
}

func TestClientTLSConfigPresentsCert(t *testing.T) {
	ca := startCA(t)
	m, err := startManager(t, testConfig(ca, t.TempDir(), testToken(testSub, time.Now().Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	tc := m.ClientTLSConfig("")
	if tc.ServerName != "istiod.istio-system.svc" || tc.MinVersion < 0x0303 {
		t.Errorf("tls config %+v", tc)
	}
	c, err := tc.GetClientCertificate(nil)
	if err != nil || c.Leaf.URIs[0].String() != m.SPIFFEID() {
		t.Errorf("GetClientCertificate = %v, %v", c, err)
	}
}

func TestNewValidates(t *testing.T) {
	ca := startCA(t)
	base := testConfig(ca, t.TempDir(), "")
	bad := map[string]func(*Config){
		"no CA":        func(c *Config) { c.CAAddress = "" },
		"CA no port":   func(c *Config) { c.CAAddress = "istiod" },
		"no roots":     func(c *Config) { c.Roots = nil },
		"no namespace": func(c *Config) { c.Namespace = "" },
		"key type":     func(c *Config) { c.KeyType = "dsa" },
		"validity":     func(c *Config) { c.Validity = time.Millisecond },
	}
	for name, mut := range bad {
		c := base
		mut(&c)
		if _, err := New(c, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	c := base
	c.CAAddress, c.ServerName = "localhost:15012", ""
	m, err := New(c, nil)
	if err != nil || m.cfg.ServerName != "istiod.istio-system.svc" {
		t.Errorf("localhost server name = %q, %v", m.cfg.ServerName, err)
	}
}

func TestRotationTime(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(24 * time.Hour)
	if got := rotationTime(nb, na, 0); got != nb.Add(24*time.Hour*49/100) {
		t.Errorf("r=0: %v", got)
	}
	if got := rotationTime(nb, na, 0.5); got != nb.Add(12*time.Hour) {
		t.Errorf("r=0.5: %v", got)
	}
	for i := 0; i < 1000; i++ {
		got := rotationTime(nb, na, float64(i)/1000)
		if got.Before(nb.Add(24*time.Hour*49/100)) || got.After(nb.Add(24*time.Hour*51/100)) {
			t.Fatalf("rotation %v outside 49..51%%", got)
		}
	}
}

func TestPlaintextCAUsesTokenForRenewal(t *testing.T) {
	ca := startCAWith(t, true)
	tok := testToken(testSub, time.Now().Add(time.Hour))
	cfg := testConfig(ca, t.TempDir(), tok)
	cfg.Plaintext = true
	cfg.Validity = 2 * time.Second
	m, err := startManager(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Status().Renewals < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	calls := ca.callLog()
	if len(calls) < 2 {
		t.Fatalf("no renewal over plaintext: %+v", m.Status())
	}
	for i, c := range calls[:2] {
		if len(c.auth) != 1 || c.auth[0] != "Bearer "+tok || len(c.peerURIs) != 0 {
			t.Errorf("call %d: auth %q peer %q, want the token and no client cert", i, c.auth, c.peerURIs)
		}
	}
}
