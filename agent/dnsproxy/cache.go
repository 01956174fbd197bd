package dnsproxy

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// CacheConfig bounds and tunes the cache of forwarded answers; every
// bound must be set.
type CacheConfig struct {
	// MaxEntries bounds the number of cached answers.
	MaxEntries int
	// MaxBytes bounds the bytes the cached answers take.
	MaxBytes int
	// MinTTL raises shorter TTLs of cached answers; at most MaxTTL.
	MinTTL time.Duration
	// MaxTTL caps the TTL of cached answers; at least a second.
	MaxTTL time.Duration
	// StaleWindow is how long past expiry an answer may still be served
	// when every upstream fails (RFC 8767); 0 turns serve-stale off.
	StaleWindow time.Duration
	// NoPrefetch turns off refreshing popular answers shortly before they
	// expire.
	NoPrefetch bool
}

// StaleTTL is the TTL of an answer served stale, as RFC 8767 recommends.
const StaleTTL = 30 * time.Second

func (c CacheConfig) validate() error {
	switch {
	case c.MaxEntries <= 0 || c.MaxBytes <= 0:
		return fmt.Errorf("dnsproxy: cache bounds of %d entries and %d bytes must be positive", c.MaxEntries, c.MaxBytes)
	case c.MaxTTL < time.Second:
		return fmt.Errorf("dnsproxy: cache maximum TTL %s is below one second", c.MaxTTL)
	case c.MinTTL < 0 || c.MinTTL > c.MaxTTL:
		return fmt.Errorf("dnsproxy: cache minimum TTL %s is not between 0 and the maximum TTL %s", c.MinTTL, c.MaxTTL)
	case c.StaleWindow < 0:
		return fmt.Errorf("dnsproxy: stale window %s is negative; 0 turns serve-stale off", c.StaleWindow)
	}
	return nil
}

const cacheShards = 16

// Cache is the second link of the chain: it answers from stored upstream
// responses (positive and, per RFC 2308, negative), coalesces identical
// misses into one upstream query, serves stale answers when the upstreams
// fail and refreshes popular names before they expire.
type Cache struct {
	cfg    CacheConfig
	seed   maphash.Seed
	shards [cacheShards]cacheShard

	fmu     sync.Mutex
	flights map[flightKey]*flight

	// now reads the clock for answers arriving from upstream; a variable
	// for tests.
	now func() time.Time

	hits, misses, stale, prefetches, coalesced, rejected counter
}

type cacheShard struct {
	mu         sync.RWMutex
	m          map[uint64]*entry
	ring       []*entry
	free       []int
	hand       int
	bytes      int
	maxEntries int
	maxBytes   int
	_          [40]byte
}

// entry is one stored response, immutable once published except for its
// CLOCK reference bit and prefetch bookkeeping.
type entry struct {
	hash   uint64
	name   []byte
	qtype  uint16
	qclass uint16
	flags  uint8
	msg    []byte // response with OPT removed and TTLs clamped
	qend   int
	ttls   []uint16 // offsets of every TTL field in msg
	stored time.Time
	ttl    time.Duration // lifetime
	size   int
	slot   int

	ref         atomic.Uint32
	hits        atomic.Uint32
	prefetching atomic.Bool
}

type flightKey struct {
	hash   uint64
	name   string
	qtype  uint16
	qclass uint16
	flags  uint8
}

// flight is one upstream query with the clients waiting for its answer.
// Its fields are guarded by Cache.fmu until done, and fixed after.
type flight struct {
	waiters []*Request
	joined  int // clients that joined after the first

	done  bool
	entry *entry // the answer, stored or stale; nil when not cacheable
	stale bool
	resp  []byte // the answer as received, when entry is nil
}

// NewCache returns an empty cache, or an error when cfg is out of range.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, seed: maphash.MakeSeed(), flights: make(map[flightKey]*flight), now: time.Now}
	per := (cfg.MaxEntries + cacheShards - 1) / cacheShards
	perBytes := (cfg.MaxBytes + cacheShards - 1) / cacheShards
	for i := range c.shards {
		c.shards[i] = cacheShard{m: make(map[uint64]*entry), maxEntries: per, maxBytes: perBytes}
	}
	return c, nil
}

func (c *Cache) hash(name []byte, qtype, qclass uint16, flags uint8) uint64 {
	h := maphash.Bytes(c.seed, name)
	return h ^ (uint64(qtype)<<32|uint64(qclass)<<8|uint64(flags))*0x9E3779B97F4A7C15
}

func (e *entry) matches(name []byte, qtype, qclass uint16, flags uint8) bool {
	return e.qtype == qtype && e.qclass == qclass && e.flags == flags && string(e.name) == string(name)
}

func (c *Cache) lookup(h uint64, r *Request) *entry {
	sh := &c.shards[h%cacheShards]
	sh.mu.RLock()
	e := sh.m[h]
	sh.mu.RUnlock()
	if e == nil || !e.matches(r.QName, r.QType, r.QClass, r.cacheFlags()) {
		return nil
	}
	return e
}

// ServeDNS answers r from the cache when a fresh answer is stored, else
// asks next once for all identical queries in flight.
func (c *Cache) ServeDNS(r *Request, next Next) {
	h := c.hash(r.QName, r.QType, r.QClass, r.cacheFlags())
	if e := c.lookup(h, r); e != nil {
		age := r.Now.Sub(e.stored)
		if age < e.ttl {
			if e.ref.Load() == 0 {
				e.ref.Store(1)
			}
			c.hits.inc()
			r.Reply(e.appendTo(r.Buf[:0], r, uint32(age/time.Second), 0))
			if !c.cfg.NoPrefetch && e.ttl >= 10*time.Second && e.ttl-age < e.ttl/10 {
				if e.hits.Add(1) >= 2 && e.prefetching.CompareAndSwap(false, true) {
					c.prefetches.inc()
					c.resolve(h, r, next, false)
				}
			}
			return
		}
	}
	c.misses.inc()
	c.resolve(h, r, next, true)
}

// MaxFlightWaiters bounds the clients waiting on one coalesced query;
// more are answered SERVFAIL at once and counted as rejected.
const MaxFlightWaiters = 256

// resolve sends r to next, or joins the identical query already in
// flight. Without answer, the query only refreshes the cache.
//
// The query that starts a flight is detached only if its answer is not
// ready when next returns: an answer next gives at once (a refusal of the
// forwarder, say) goes out in place, with the batch, allocating nothing
// more.
func (c *Cache) resolve(h uint64, r *Request, next Next, answer bool) {
	key := flightKey{hash: h, name: string(r.QName), qtype: r.QType, qclass: r.QClass, flags: r.cacheFlags()}
	c.fmu.Lock()
	if f := c.flights[key]; f != nil {
		if !answer {
			c.fmu.Unlock()
			return
		}
		if f.joined >= MaxFlightWaiters {
			c.fmu.Unlock()
			c.rejected.inc()
			r.Reply(appendHeaderOnly(r.Buf[:0], r, rcodeServFail))
			return
		}
		f.joined++
		f.waiters = append(f.waiters, r.Detach())
		c.coalesced.inc()
		c.fmu.Unlock()
		return
	}
	f := &flight{}
	c.flights[key] = f
	c.fmu.Unlock()

	u := &Request{
		Msg: r.Msg, QEnd: r.QEnd, QType: r.QType, QClass: r.QClass, ID: r.ID, Flags: r.Flags,
		EDNS: r.EDNS, UDPSize: r.UDPSize, DO: r.DO, TCP: r.TCP, Src: r.Src, Now: r.Now,
	}
	n := copy(u.nameBuf[:], r.QName)
	u.QName = u.nameBuf[:n]
	u.w = &collector{c: c, key: key, f: f}
	next(u)
	if !answer {
		return
	}
	c.fmu.Lock()
	if f.done {
		c.fmu.Unlock()
		r.Reply(c.appendFlightAnswer(r.Buf[:0], r, f))
		return
	}
	f.waiters = append(f.waiters, r.Detach())
	c.fmu.Unlock()
}

// appendFlightAnswer appends the answer of the finished flight f adapted
// to w.
func (c *Cache) appendFlightAnswer(dst []byte, w *Request, f *flight) []byte {
	switch {
	case f.stale:
		c.stale.inc()
		return f.entry.appendTo(dst, w, 0, uint32(StaleTTL/time.Second))
	case f.entry != nil:
		return f.entry.appendTo(dst, w, 0, 0)
	default:
		return adaptResponse(dst, f.resp, w)
	}
}

// collector receives the upstream answer to a flight, stores it and
// answers every waiter.
type collector struct {
	c    *Cache
	key  flightKey
	f    *flight
	once atomic.Bool
}

func (k *collector) detach(*Request) responder { return k }

func (k *collector) reply(u *Request, resp []byte) {
	if !k.once.CompareAndSwap(false, true) {
		return
	}
	c, f := k.c, k.f
	now := c.now()
	var (
		e     *entry
		stale bool
	)
	if len(resp) < headerLen || resp[3]&0xF == rcodeServFail || resp[3]&0xF == rcodeRefused {
		if old := c.lookup(k.key.hash, u); old != nil && c.cfg.StaleWindow > 0 && now.Sub(old.stored) < old.ttl+c.cfg.StaleWindow {
			e, stale = old, true
		}
	}
	if e == nil {
		e = c.store(u, resp, now)
	}
	c.fmu.Lock()
	delete(c.flights, k.key)
	f.done, f.entry, f.stale, f.resp = true, e, stale, resp
	waiters := f.waiters
	f.waiters = nil
	c.fmu.Unlock()
	for _, w := range waiters {
		w.Reply(c.appendFlightAnswer(nil, w, f))
	}
}

// adaptResponse copies resp, an answer to the same question, with the ID,
// RD bit and question spelling of r.
func adaptResponse(dst, resp []byte, r *Request) []byte {
	dst = append(dst, resp...)
	if len(dst) < r.QEnd {
		return dst
	}
	binary.BigEndian.PutUint16(dst, r.ID)
	dst[2] = dst[2]&^(flagRD>>8) | byte((r.Flags&flagRD)>>8)
	copy(dst[headerLen:r.QEnd], r.Msg[headerLen:r.QEnd])
	return dst
}

// appendTo appends the stored response adapted to r, with every TTL
// lowered by age seconds, or set to staleTTL when that is not zero.
func (e *entry) appendTo(dst []byte, r *Request, age, staleTTL uint32) []byte {
	base := len(dst)
	dst = append(dst, e.msg...)
	m := dst[base:]
	binary.BigEndian.PutUint16(m, r.ID)
	m[2] = m[2]&^(flagRD>>8) | byte((r.Flags&flagRD)>>8)
	copy(m[headerLen:e.qend], r.Msg[headerLen:r.QEnd])
	for _, off := range e.ttls {
		t := staleTTL
		if t == 0 {
			t = binary.BigEndian.Uint32(m[off:]) - age
		}
		binary.BigEndian.PutUint32(m[off:], t)
	}
	return dst
}

// store keeps a cacheable response to u and returns its entry, or nil.
// Cacheable: NOERROR with answers (positive), NXDOMAIN or NODATA with an
// SOA in the authority section (negative, RFC 2308), not truncated.
func (c *Cache) store(u *Request, resp []byte, now time.Time) *entry {
	if len(resp) < u.QEnd || !sameQuestion(resp, u.QEnd, u.QName, u.QType, u.QClass) {
		return nil
	}
	flags := binary.BigEndian.Uint16(resp[2:])
	rcode := flags & 0xF
	if flags&flagTC != 0 || (rcode != rcodeSuccess && rcode != rcodeNXDomain) {
		return nil
	}
	ancount := binary.BigEndian.Uint16(resp[6:])
	negative := rcode == rcodeNXDomain || ancount == 0
	var offs []uint16
	minTTL := uint32(1<<31 - 1)
	soaTTL, haveSOA := uint32(0), false
	err := walkRRs(resp, u.QEnd, func(x rr) error {
		if x.typ == typeOPT {
			return errBadOPT
		}
		t := x.ttl(resp)
		if t > 1<<31-1 {
			t = 0 // RFC 2181: treat as zero
		}
		offs = append(offs, uint16(x.hdr+4))
		minTTL = min(minTTL, t)
		if x.typ == typeSOA && x.section == 1 && x.end-x.hdr >= 10+22 && !haveSOA {
			haveSOA = true
			soaTTL = min(t, binary.BigEndian.Uint32(resp[x.end-4:]))
		}
		return nil
	})
	if err != nil || len(resp) > 0xFFFF {
		return nil
	}
	ttl := minTTL
	if negative {
		if !haveSOA {
			return nil
		}
		ttl = soaTTL
	}
	maxS := uint32(c.cfg.MaxTTL / time.Second)
	minS := uint32(c.cfg.MinTTL / time.Second)
	ttl = max(min(ttl, maxS), minS)
	if ttl == 0 {
		return nil
	}
	msg := append([]byte(nil), resp...)
	for _, off := range offs {
		t := binary.BigEndian.Uint32(msg[off:])
		if negative {
			t = ttl
		} else {
			t = max(min(t, maxS), ttl)
		}
		binary.BigEndian.PutUint32(msg[off:], t)
	}
	e := &entry{
		name: append([]byte(nil), u.QName...), qtype: u.QType, qclass: u.QClass, flags: u.cacheFlags(),
		msg: msg, qend: u.QEnd, ttls: offs, stored: now, ttl: time.Duration(ttl) * time.Second,
	}
	e.hash = c.hash(e.name, e.qtype, e.qclass, e.flags)
	e.size = len(msg) + len(e.name) + 2*len(offs) + 160
	c.insert(e, now)
	return e
}

func (c *Cache) insert(e *entry, now time.Time) {
	sh := &c.shards[e.hash%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.m[e.hash]; old != nil {
		e.slot = old.slot
		sh.ring[e.slot] = e
		sh.m[e.hash] = e
		sh.bytes += e.size - old.size
		return
	}
	for len(sh.m) > 0 && (len(sh.m) >= sh.maxEntries || sh.bytes+e.size > sh.maxBytes) {
		sh.evictOne(now, c.cfg.StaleWindow)
	}
	if e.size > sh.maxBytes {
		return
	}
	if n := len(sh.free); n > 0 {
		e.slot = sh.free[n-1]
		sh.free = sh.free[:n-1]
		sh.ring[e.slot] = e
	} else {
		e.slot = len(sh.ring)
		sh.ring = append(sh.ring, e)
	}
	sh.m[e.hash] = e
	sh.bytes += e.size
}

// evictOne removes one entry by the CLOCK algorithm: answers past their
// stale window go first, recently used ones get a second chance.
func (sh *cacheShard) evictOne(now time.Time, staleWindow time.Duration) {
	for i := 0; i < 2*len(sh.ring)+1; i++ {
		if sh.hand >= len(sh.ring) {
			sh.hand = 0
		}
		e := sh.ring[sh.hand]
		sh.hand++
		if e == nil {
			continue
		}
		if now.Sub(e.stored) < e.ttl+staleWindow && e.ref.Swap(0) == 1 {
			continue
		}
		sh.remove(e)
		return
	}
}

func (sh *cacheShard) remove(e *entry) {
	delete(sh.m, e.hash)
	sh.ring[e.slot] = nil
	sh.free = append(sh.free, e.slot)
	sh.bytes -= e.size
}

// Len returns the number of stored answers and the bytes they take.
func (c *Cache) Len() (entries, bytes int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		entries += len(sh.m)
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return entries, bytes
}
