package demo

import "testing"

func TestParseDig(t *testing.T) {
	out := `; <<>> DiG 9.18.33 <<>> @127.0.0.1 -p 15053 x.ns1.svc.cluster.local.vm.svc.cluster.local
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;x.ns1.svc.cluster.local.vm.svc.cluster.local. IN A

;; ANSWER SECTION:
x.ns1.svc.cluster.local.vm.svc.cluster.local. 30 IN CNAME x.ns1.svc.cluster.local.
x.ns1.svc.cluster.local. 30	IN	A	10.96.0.12

;; Query time: 0 msec
`
	r := ParseDig(out)
	if r.Status != "NOERROR" || !r.Authoritative || len(r.Answers) != 2 ||
		r.Answers[0] != "CNAME x.ns1.svc.cluster.local." || r.Answers[1] != "A 10.96.0.12" {
		t.Fatalf("%+v", r)
	}
	r = ParseDig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n;; flags: qr rd ra; QUERY: 1\n")
	if r.Status != "NXDOMAIN" || r.Authoritative || len(r.Answers) != 0 {
		t.Fatalf("%+v", r)
	}
}
