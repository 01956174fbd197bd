package mesh

import (
	"testing"
)

// oddEntries are ServiceEntries that Istio's validation accepts and that
// istiod puts into the NameTable as written.
const oddEntries = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mapped, namespace: ns1}
spec:
  hosts: [mapped.internal]
  addresses: ["::ffff:10.105.0.1"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.105.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zoned, namespace: ns1}
spec:
  hosts: [zoned.internal]
  addresses: ["fe80::1%eth0"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: unspecified, namespace: ns1}
spec:
  hosts: [unspecified.internal]
  addresses: ["::"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shapes, namespace: ns1}
spec:
  hosts: [Upper.Example.COM, trailing.example.com., "*.wild.example.com"]
  addresses: [10.106.0.0/24, 10.106.1.1/32, 10.106.2.2]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 10.106.2.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cidr-only, namespace: ns1}
spec:
  hosts: [cidr.internal]
  addresses: [10.107.0.0/16]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: v6only, namespace: ns1}
spec:
  hosts: [v6only.internal]
  addresses: ["2001:db8::7"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`

// TestOddServiceEntriesReachTheTable: what Istio's validation accepts, the
// testbed serves as istiod does: addresses as written, a one-address CIDR
// as its address, wider CIDRs left out, and no IP-family filter on a
// ServiceEntry's own addresses.
func TestOddServiceEntriesReachTheTable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "odd.yaml", oddEntries)
	s := loadT(t, dir, Options{})
	nt := s.NameTable(Proxy{Namespace: "ns1", IPs: v4Only, DNSCapture: true})
	shapes := []string{"10.106.1.1", "10.106.2.2"}
	checkTable(t, nt, map[string]info{
		"mapped.internal":       {ips: []string{"::ffff:10.105.0.1"}, registry: ext},
		"zoned.internal":        {ips: []string{"fe80::1%eth0"}, registry: ext},
		"unspecified.internal":  {ips: []string{"::"}, registry: ext},
		"Upper.Example.COM":     {ips: shapes, registry: ext},
		"trailing.example.com.": {ips: shapes, registry: ext},
		"*.wild.example.com":    {ips: shapes, registry: ext},
		"v6only.internal":       {ips: []string{"2001:db8::7"}, registry: ext},
	}, []string{"cidr.internal"})
}
