package demo

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/onramp-mesh/onramp/testbed/netns"
)

// DigResult is what dig printed for one query.
type DigResult struct {
	Status        string   // NOERROR, NXDOMAIN, SERVFAIL...
	Authoritative bool     // the aa flag: answered from the mesh table
	Answers       []string // "TYPE value" of each answer record, in order
}

// Dig asks server (IP and port) for name/qtype with the real dig, from inside ns.
func Dig(ctx context.Context, ns *netns.NS, server, port, name, qtype string) (DigResult, error) {
	args := []string{"@" + server, "-p", port, "+tries=1", "+time=2", "+nocookie", name, qtype}
	if qtype == "PTR" {
		args = []string{"@" + server, "-p", port, "+tries=1", "+time=2", "+nocookie", "-x", name}
	}
	out, err := ns.Command(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		return DigResult{}, fmt.Errorf("dig %s %s: %v: %s", name, qtype, err, out)
	}
	return ParseDig(string(out)), nil
}

// ParseDig reads dig's default output.
func ParseDig(out string) DigResult {
	var r DigResult
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			if i := strings.Index(line, "status: "); i >= 0 {
				r.Status = strings.TrimRight(strings.Fields(line[i+len("status: "):])[0], ",")
			}
		case strings.HasPrefix(line, ";; flags:"):
			flags := strings.SplitN(strings.TrimPrefix(line, ";; flags:"), ";", 2)[0]
			for _, f := range strings.Fields(flags) {
				if f == "aa" {
					r.Authoritative = true
				}
			}
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = "answer"
		case strings.HasPrefix(line, ";;") || strings.TrimSpace(line) == "":
			if strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, "SECTION:") {
				section = ""
			}
			if strings.TrimSpace(line) == "" {
				section = ""
			}
		case section == "answer":
			f := strings.Fields(line)
			if len(f) >= 5 {
				r.Answers = append(r.Answers, f[3]+" "+strings.Join(f[4:], " "))
			}
		}
	}
	return r
}
