package dnsproxy

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func storeName(t *testing.T, c *Cache, name string, ttl uint32, now time.Time) *entry {
	t.Helper()
	q := packQuery(t, name, dns.TypeA, false)
	var r Request
	if res, err := parseQuery(q, &r); res != parseOK {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.Unpack(q)
	resp, _ := answerA("192.0.2.1", ttl)(nil, m).Pack()
	return c.store(&r, resp, now)
}

func TestCacheStaysBounded(t *testing.T) {
	c := newCache(t, CacheConfig{MaxEntries: 160, MaxBytes: 1 << 20, MaxTTL: time.Hour})
	now := time.Now()
	for i := range 5000 {
		storeName(t, c, "n"+itoa(uint32(i))+".example.org.", 300, now)
	}
	if n, _ := c.Len(); n > 160 || n < 100 {
		t.Fatalf("%d entries, want at most 160 (and the cache in use)", n)
	}
	c = newCache(t, CacheConfig{MaxEntries: 100000, MaxBytes: 64 << 10, MaxTTL: time.Hour})
	for i := range 5000 {
		storeName(t, c, "n"+itoa(uint32(i))+".example.org.", 300, now)
	}
	if _, b := c.Len(); b > 64<<10 {
		t.Fatalf("%d bytes, want at most %d", b, 64<<10)
	}
}

func TestCacheTTLClamp(t *testing.T) {
	c := newCache(t, CacheConfig{MaxEntries: 100, MaxBytes: 1 << 20, MinTTL: 10 * time.Second, MaxTTL: 60 * time.Second})
	now := time.Now()
	if e := storeName(t, c, "long.example.org.", 86400, now); e.ttl != 60*time.Second {
		t.Fatalf("long TTL stored as %s, want the 60s cap", e.ttl)
	}
	if e := storeName(t, c, "short.example.org.", 2, now); e.ttl != 10*time.Second {
		t.Fatalf("short TTL stored as %s, want the 10s floor", e.ttl)
	}
	if e := storeName(t, c, "zero.example.org.", 0, now); e == nil || e.ttl != 10*time.Second {
		t.Fatalf("zero TTL with a floor: %v", e)
	}
	if e := storeName(t, newCache(t, testCache), "zero.example.org.", 0, now); e != nil {
		t.Fatal("a TTL-0 answer was cached without a floor")
	}
}

func newCache(t *testing.T, cfg CacheConfig) *Cache {
	t.Helper()
	c, err := NewCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
