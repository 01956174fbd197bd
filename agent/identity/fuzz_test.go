package identity

import (
	"testing"
	"time"
)

// FuzzVerifyChain feeds arbitrary CA answers to the chain check: it must
// never panic and never accept a chain that does not verify.
func FuzzVerifyChain(f *testing.F) {
	ca := newAuthority(f, "fuzz root")
	key, _ := newKey(KeyECDSA)
	f.Add(string(ca.pem), string(ca.pem))
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "")
	f.Add("garbage", string(ca.pem))
	f.Fuzz(func(t *testing.T, a, b string) {
		c, err := verifyChain([]string{a, b}, key, ca.pool, time.Now())
		if err == nil && c.spiffeID == "" {
			t.Fatal("accepted a chain without a SPIFFE ID")
		}
	})
}

// FuzzTokenExpiry reads the exp of arbitrary tokens without panicking.
func FuzzTokenExpiry(f *testing.F) {
	f.Add(testToken(testSub, time.Unix(1700000000, 0)))
	f.Add("a.b.c")
	f.Add("e30.eyJleHAiOjF9.x")
	f.Fuzz(func(t *testing.T, tok string) {
		if exp, ok := tokenExpiry(tok); ok && exp.Unix() < 0 {
			t.Fatalf("negative expiry %v accepted", exp)
		}
	})
}
