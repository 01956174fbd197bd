package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
)

// cli runs the onramp command line args and returns its output and exit status.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// checkNoDoubledPrefix fails when a line of s repeats a prefix, as in
// "onramp: onramp: ..." or "config: x.yaml: config: ...".
func checkNoDoubledPrefix(t *testing.T, s string) {
	t.Helper()
	word := regexp.MustCompile(`^[a-z]+$`)
	for _, line := range strings.Split(s, "\n") {
		seen := map[string]bool{}
		for _, part := range strings.Split(line, ": ") {
			if !word.MatchString(part) {
				continue
			}
			if seen[part] {
				t.Errorf("doubled prefix %q in %q", part, line)
			}
			seen[part] = true
		}
	}
}

// commandPaths lists every command of the tree as its arguments after
// "onramp", the root first.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, sub := range c.Commands() {
		out = append(out, commandPaths(sub, append(append([]string{}, prefix...), sub.Name()))...)
	}
	return out
}

// tooManyArgs gives, for some commands, arguments they must refuse; the
// others must refuse defaultTooManyArgs.
var defaultTooManyArgs = []string{"x1", "x2", "x3", "x4", "x5"}

var tooManyArgs = map[string][]string{
	"":                {"fly"},
	"run":             {"extra"},
	"status":          {"extra"},
	"lookup":          {"a.example", "A", "extra"},
	"nametable":       {"frob"},
	"nametable check": {"a.json", "b.json"},
	"nametable show":  {"extra"},
	"config":          {"frob"},
	"config check":    {"a.yaml", "b.yaml"},
	"redirect":        {"frob"},
	"redirect status": {"extra"},
	"redirect remove": {"extra"},
	"version":         {"extra"},
	"completion":      {"tcsh"},
	"gen-docs":        {"extra"},
}

func TestEveryCommandHelpAndUsageErrors(t *testing.T) {
	paths := commandPaths(newRootCmd(), nil)
	if len(paths) < 12 {
		t.Fatalf("found %d commands, want at least 12", len(paths))
	}
	for _, p := range paths {
		name := strings.Join(p, " ")
		t.Run("onramp "+name, func(t *testing.T) {
			extra, ok := tooManyArgs[name]
			if !ok {
				extra = defaultTooManyArgs
			}
			stdout, stderr, code := cli(t, append(append([]string{}, p...), "--help")...)
			if code != exitOK || stderr != "" {
				t.Errorf("--help: exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			if !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, "Examples:") {
				t.Errorf("--help on stdout lacks Usage or Examples:\n%s", stdout)
			}

			// Flags are accepted after arguments as before them, so an
			// unknown flag is refused wherever it is.
			stdout, stderr, code = cli(t, append(append(append([]string{}, p...), extra...), "--no-such-flag")...)
			wantHint := "Run 'onramp" + strings.TrimRight(" "+name, " ") + " --help' for usage."
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, "unknown flag: --no-such-flag") || !strings.Contains(stderr, wantHint) {
				t.Errorf("unknown flag: exit %d, stdout %q, stderr %q; want 2, nothing, the flag and %q", code, stdout, stderr, wantHint)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 1 {
				t.Errorf("unknown flag: want one line of error and one of hint, got %q", stderr)
			}

			stdout, stderr, code = cli(t, append(append([]string{}, p...), extra...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, wantHint) {
				t.Errorf("args %q: exit %d, stdout %q, stderr %q; want 2 and the hint", extra, code, stdout, stderr)
			}
			if !strings.Contains(stderr, extra[0]) && !strings.Contains(stderr, extra[len(extra)-1]) && !strings.Contains(stderr, "argument(s)") {
				t.Errorf("args %q: the error should name the argument or the count: %q", extra, stderr)
			}
			checkNoDoubledPrefix(t, stderr)
		})
	}
}

func TestHelpCommand(t *testing.T) {
	stdout, _, code := cli(t, "help")
	if code != 0 {
		t.Fatalf("onramp help: exit %d", code)
	}
	for _, c := range []string{"run", "status", "lookup", "nametable", "config", "version", "completion"} {
		if !strings.Contains(stdout, "\n  "+c+" ") {
			t.Errorf("onramp help does not list %s:\n%s", c, stdout)
		}
	}
	if strings.Contains(stdout, "gen-docs") {
		t.Errorf("gen-docs is hidden but listed")
	}
	if stdout, _, code := cli(t, "help", "lookup"); code != 0 || !strings.Contains(stdout, "onramp lookup NAME|IP") {
		t.Errorf("onramp help lookup: exit %d:\n%s", code, stdout)
	}
}

func TestNoArgumentsPrintsHelp(t *testing.T) {
	stdout, stderr, code := cli(t)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "Running the agent:") {
		t.Errorf("onramp: exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
}

func TestNameTableShowBadAddressIsAnError(t *testing.T) {
	stdout, stderr, code := cli(t, "nametable", "show", "--addr", "bad host%zz")
	if code != exitFailed || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	if !strings.Contains(stderr, `status address "bad host%zz" is not host:port`) {
		t.Errorf("stderr %q does not say the address is bad", stderr)
	}
	checkNoDoubledPrefix(t, stderr)
}

func TestNameTableShowHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		want     []string
		wantCode int
	}{
		{http.StatusNotFound, "404 page not found\n", []string{"answered 404 Not Found for /debug/nametable: 404 page not found", "--addr"}, exitFailed},
		{http.StatusInternalServerError, "index broken\nmore\n", []string{"answered 500 Internal Server Error for /debug/nametable: index broken;", "journalctl -u onramp"}, exitFailed},
		{http.StatusOK, "<html>", []string{"not the expected JSON"}, exitFailed},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		addr := strings.TrimPrefix(srv.URL, "http://")
		stdout, stderr, code := cli(t, "nametable", "show", "--addr", addr)
		srv.Close()
		if code != tc.wantCode || stdout != "" {
			t.Errorf("HTTP %d: exit %d, stdout %q; want %d and nothing on stdout", tc.status, code, stdout, tc.wantCode)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("HTTP %d: stderr %q lacks %q", tc.status, stderr, w)
			}
		}
	}
}

func TestNameTableShow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/nametable" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"namespace":"ns1","clusterDomain":"cluster.local","search":["ns1.svc.cluster.local"],"ttlSeconds":30,"names":3,
			"entries":[{"name":"productpage.ns1.svc.cluster.local.","registry":"Kubernetes","ips":["10.96.0.12"],"aliases":["productpage.ns1."]}]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	stdout, stderr, code := cli(t, "nametable", "show", "--addr", addr)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "1 hosts, 3 names answered") || !regexp.MustCompile(`productpage\.ns1\.svc\.cluster\.local\.\s+Kubernetes\s+10\.96\.0\.12\s+productpage\.ns1\.`).MatchString(stdout) {
		t.Errorf("text output:\n%s", stdout)
	}
	// -o after the flag it follows, as kubectl allows.
	stdout, _, code = cli(t, "nametable", "show", "--addr", addr, "-o", "json")
	var got struct {
		Entries []struct{ Name string } `json:"entries"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || len(got.Entries) != 1 {
		t.Errorf("-o json: exit %d, %v:\n%s", code, err, stdout)
	}
	if _, stderr, code := cli(t, "nametable", "show", "--addr", addr, "-o", "yaml"); code != exitUsage || !strings.Contains(stderr, `--output "yaml": want text or json`) {
		t.Errorf("-o yaml: exit %d, %q", code, stderr)
	}
}

// dnsServer answers every question NOERROR with no records and sends the
// questions it got on the returned channel.
func dnsServer(t *testing.T) (addr string, questions <-chan dns.Question) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	qs := make(chan dns.Question, 10)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		qs <- r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), qs
}

func TestLookupOfAnIPAsksForThePTR(t *testing.T) {
	addr, qs := dnsServer(t)
	for _, tc := range []struct {
		args  []string
		name  string
		qtype uint16
	}{
		{[]string{"10.96.0.12"}, "12.0.96.10.in-addr.arpa.", dns.TypePTR},
		{[]string{"fd00::1"}, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR},
		{[]string{"10.96.0.12", "PTR"}, "12.0.96.10.in-addr.arpa.", dns.TypePTR},
		{[]string{"productpage.ns1", "aaaa"}, "productpage.ns1.", dns.TypeAAAA},
		{[]string{"productpage"}, "productpage.", dns.TypeA},
	} {
		stdout, stderr, code := cli(t, append([]string{"lookup", "--server", addr}, tc.args...)...)
		if code != 0 {
			t.Errorf("lookup %q: exit %d, %q", tc.args, code, stderr)
			continue
		}
		q := <-qs
		if q.Name != tc.name || q.Qtype != tc.qtype {
			t.Errorf("lookup %q asked %s %s, want %s %s", tc.args, q.Name, dns.TypeToString[q.Qtype], tc.name, dns.TypeToString[tc.qtype])
		}
		if !strings.Contains(stdout, "(mesh)") {
			t.Errorf("lookup %q: output %q does not say the answer is the mesh's", tc.args, stdout)
		}
	}
	if _, stderr, code := cli(t, "lookup", "--server", addr, "x.example", "BOGUS"); code != exitUsage || !strings.Contains(stderr, `unknown record type "BOGUS"`) {
		t.Errorf("unknown type: exit %d, %q", code, stderr)
	}
}

func TestRunRefusesBundleWithNameTable(t *testing.T) {
	_, stderr, code := cli(t, "run", "--bundle", "/nonexistent/bundle", "--name-table", "/nonexistent/table.json")
	if code != exitUsage || !strings.Contains(stderr, "--bundle and --name-table exclude each other") {
		t.Errorf("exit %d, %q; want 2 and the reason", code, stderr)
	}
}

func TestRunMissingConfigFile(t *testing.T) {
	_, stderr, code := cli(t, "run", "--config", "/nonexistent/onramp.yaml")
	if code != exitFailed || !strings.Contains(stderr, "/nonexistent/onramp.yaml") {
		t.Errorf("exit %d, %q; want 1 naming the file", code, stderr)
	}
	checkNoDoubledPrefix(t, stderr)
}

func TestStatusNoAgent(t *testing.T) {
	_, stderr, code := cli(t, "status", "--addr", "127.0.0.1:1")
	if code != exitFailed || !strings.Contains(stderr, "no agent answers on 127.0.0.1:1") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	checkNoDoubledPrefix(t, stderr)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNameTableCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}`)
	bad := writeFile(t, dir, "bad.json", `{"table": {"x.example": {"ips": ["10.0.0.300"]}}}`)
	noaddr := writeFile(t, dir, "noaddr.json", `{"table": {"a.example": {"ips": ["10.0.0.1"]}, "empty.example": {}, "also-empty.example": {"ips": []}}}`)

	stdout, stderr, code := cli(t, "nametable", "check", good, "--namespace", "ns1")
	if code != 0 || !strings.Contains(stdout, "ok, 1 hosts, 4 names answered") {
		t.Errorf("good table: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = cli(t, "nametable", "check", bad)
	if code != exitFailed || !hasLine(stdout, bad+": ", `"x.example"`, `"10.0.0.300"`) || stderr != "onramp: "+bad+": 1 problem(s)\n" {
		t.Errorf("bad table: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	checkNoDoubledPrefix(t, stdout)
	stdout, stderr, code = cli(t, "nametable", "check", noaddr)
	if code != exitFailed {
		t.Errorf("entries without addresses: exit %d, want 1", code)
	}
	for _, e := range []string{`"empty.example"`, `"also-empty.example"`} {
		if !hasLine(stdout, noaddr+": ", e, "no addresses") {
			t.Errorf("entries without addresses: stdout %q has no line for %s", stdout, e)
		}
	}
	if !strings.Contains(stderr, "2 problem(s)") || strings.Contains(stdout, `"a.example"`) {
		t.Errorf("entries without addresses: stdout %q, stderr %q", stdout, stderr)
	}
	stdout, _, code = cli(t, "nametable", "check", "-o", "json", noaddr)
	var r struct {
		OK       bool
		Hosts    int
		Problems []string
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitFailed || r.OK || len(r.Problems) != 2 {
		t.Errorf("-o json: exit %d, %v, %+v", code, err, r)
	}
	_, stderr, code = cli(t, "nametable", "check", filepath.Join(dir, "absent.json"))
	if code != exitFailed || !strings.Contains(stderr, "absent.json: no such file") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// hasLine reports whether a line of s starts with prefix and contains each of subs.
func hasLine(s, prefix string, subs ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		ok := strings.HasPrefix(line, prefix)
		for _, sub := range subs {
			ok = ok && strings.Contains(line, sub)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	table := writeFile(t, dir, "table.json", `{"table": {"a.example": {"ips": ["10.0.0.1"]}}}`)
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	good := writeFile(t, dir, "good.yaml", "nameTable: "+table+"\nstateDir: "+state+"\n")
	badKey := writeFile(t, dir, "badkey.yaml", "nameTable: "+table+"\ndns:\n  listen: [\"localhost\"]\n")
	both := writeFile(t, dir, "both.yaml", "nameTable: "+table+"\nbundle: "+dir+"\nstateDir: "+state+"\n")
	noTable := writeFile(t, dir, "notable.yaml", "nameTable: "+filepath.Join(dir, "absent.json")+"\nstateDir: "+state+"\n")
	nothing := writeFile(t, dir, "nothing.yaml", "stateDir: "+state+"\n")

	for _, tc := range []struct {
		file     string
		wantCode int
		want     string
	}{
		{good, 0, good + ": ok"},
		{badKey, exitFailed, `dns.listen: "localhost" is not IP:port`},
		{both, exitFailed, "error: nameTable: both bundle and nameTable are set"},
		{noTable, exitFailed, "error: nameTable: open " + filepath.Join(dir, "absent.json")},
		{nothing, exitFailed, "error: bundle: neither bundle nor nameTable is set"},
		{filepath.Join(dir, "absent.yaml"), exitFailed, "absent.yaml: no such file"},
	} {
		stdout, stderr, code := cli(t, "config", "check", tc.file)
		if code != tc.wantCode || !strings.Contains(stdout, tc.want) {
			t.Errorf("config check %s: exit %d, stdout %q, stderr %q; want %d and %q", filepath.Base(tc.file), code, stdout, stderr, tc.wantCode, tc.want)
		}
		checkNoDoubledPrefix(t, stdout+stderr)
	}
	stdout, _, code := cli(t, "config", "check", "-o", "json", nothing)
	var rep struct {
		OK       bool
		Findings []struct{ Severity, File, Key, Message string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitFailed || rep.OK || len(rep.Findings) != 1 || rep.Findings[0].Key != "bundle" || rep.Findings[0].File != nothing {
		t.Errorf("-o json: exit %d, %v, %+v", code, err, rep)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := cli(t, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") || v.IstioVersion == "" || v.Platform == "" {
		t.Errorf("incomplete: %+v", v)
	}
	stdout, _, code = cli(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "onramp "+v.Version+"\n") || !strings.Contains(stdout, "istio version: "+v.IstioVersion) {
		t.Errorf("text: exit %d, %q", code, stdout)
	}
	if stdout, _, code := cli(t, "--version"); code != 0 || stdout != "onramp "+v.Version+"\n" {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		stdout, stderr, code := cli(t, "completion", shell)
		if code != 0 || stderr != "" || len(stdout) < 1000 {
			t.Errorf("%s: exit %d, %d bytes, stderr %q", shell, code, len(stdout), stderr)
		}
		if !strings.Contains(stdout, "onramp") {
			t.Errorf("%s: the script does not name onramp", shell)
		}
	}
	// The scripts ask the binary for candidates; the subcommands must come back.
	stdout, _, code := cli(t, "__complete", "")
	for _, c := range []string{"run", "status", "lookup", "nametable", "config", "version", "completion"} {
		if code != 0 || !strings.Contains(stdout, "\n"+c+"\t") && !strings.HasPrefix(stdout, c+"\t") {
			t.Errorf("completion of %q missing from:\n%s", c, stdout)
		}
	}
	if strings.Contains(stdout, "gen-docs") {
		t.Errorf("hidden gen-docs is completed")
	}
	stdout, _, _ = cli(t, "__complete", "status", "-o", "")
	if !strings.Contains(stdout, "text\n") || !strings.Contains(stdout, "json\n") {
		t.Errorf("-o completion:\n%s", stdout)
	}
}

func TestGenDocs(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := cli(t, "gen-docs", "--dir", dir); code != 0 {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(dir, "man", "man1", "onramp.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range commandPaths(newRootCmd(), nil)[1:] {
		if p[0] == "gen-docs" || p[0] == "help" {
			continue
		}
		base := "onramp-" + strings.Join(p, "-")
		if len(p) == 1 && !bytes.Contains(page, []byte(base+"(1)")) {
			t.Errorf("onramp.1 does not refer to %s(1)", base)
		}
		if _, err := os.Stat(filepath.Join(dir, "man", "man1", base+".1")); err != nil {
			t.Errorf("no man page for onramp %s: %v", strings.Join(p, " "), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "man1", "onramp-gen-docs.1")); err == nil {
		t.Errorf("hidden gen-docs has a man page")
	}
	for _, f := range []string{"completions/bash/onramp", "completions/zsh/_onramp", "completions/fish/onramp.fish"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, stderr, code := cli(t, "gen-docs"); code != exitUsage || !strings.Contains(stderr, `required flag(s) "dir" not set`) {
		t.Errorf("no --dir: exit %d, %q", code, stderr)
	}
}

func TestNameTableShowListOfNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`["productpage.ns1.", "productpage.ns1.svc.cluster.local."]`))
	}))
	defer srv.Close()
	stdout, stderr, code := cli(t, "nametable", "show", "--addr", strings.TrimPrefix(srv.URL, "http://"))
	if code != 0 || stdout != "2 names answered\nproductpage.ns1.\nproductpage.ns1.svc.cluster.local.\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestHelpOfAnUnknownTopicIsAUsageError(t *testing.T) {
	stdout, stderr, code := cli(t, "help", "fly")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, `no help topic "fly"`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestClientCommandsFindTheAgentInItsConfig(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`["a.example."]`))
	}))
	defer srv.Close()
	dnsAddr, qs := dnsServer(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "onramp.yaml", "status:\n  listen: "+strings.TrimPrefix(srv.URL, "http://")+"\ndns:\n  listen: [\""+dnsAddr+"\"]\n")
	off := writeFile(t, dir, "off.yaml", "status:\n  listen: \"off\"\n")

	if stdout, stderr, code := cli(t, "nametable", "show", "--config", cfg); code != 0 || !strings.Contains(stdout, "a.example.") {
		t.Errorf("nametable show --config: exit %d, %q %q", code, stdout, stderr)
	}
	if _, stderr, code := cli(t, "lookup", "a.example", "--config", cfg); code != 0 {
		t.Errorf("lookup --config: exit %d, %q", code, stderr)
	} else if q := <-qs; q.Name != "a.example." {
		t.Errorf("lookup --config asked %v", q)
	}
	_, stderr, code := cli(t, "status", "--config", off)
	if code != exitFailed || !strings.Contains(stderr, off+": the agent's status server is off") {
		t.Errorf("status with status.listen off: exit %d, %q", code, stderr)
	}
	// --addr wins over the file.
	if stdout, _, code := cli(t, "nametable", "show", "--config", off, "--addr", strings.TrimPrefix(srv.URL, "http://")); code != 0 || !strings.Contains(stdout, "a.example.") {
		t.Errorf("--addr over --config: exit %d, %q", code, stdout)
	}
	_, stderr, code = cli(t, "status", "--config", filepath.Join(dir, "absent.yaml"))
	if code != exitFailed || !strings.Contains(stderr, "absent.yaml: no such file") {
		t.Errorf("status with a missing --config: exit %d, %q", code, stderr)
	}
}

func TestStatusHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	stdout, stderr, code := cli(t, "status", "--addr", strings.TrimPrefix(srv.URL, "http://"))
	if code != exitFailed || stdout != "" || !strings.Contains(stderr, "answered 404 Not Found for /debug/status") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, stderr, code = cli(t, "status", "--addr", "bad host%zz")
	if code != exitFailed || !strings.Contains(stderr, `status address "bad host%zz" is not host:port`) {
		t.Errorf("bad address: exit %d, %q", code, stderr)
	}
}
