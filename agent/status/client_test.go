package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"version": "1.2.3"}`))
		case "/fail":
			http.Error(w, "the index is broken", http.StatusInternalServerError)
		case "/html":
			w.Write([]byte("<html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var rep Report
	if err := Get(context.Background(), addr, "/ok", &rep); err != nil || rep.Version != "1.2.3" {
		t.Errorf("ok: %v, %+v", err, rep)
	}
	for _, tc := range []struct{ addr, path, want string }{
		{addr, "/missing", "answered 404 Not Found for /missing: 404 page not found; is --addr the agent's status address"},
		{addr, "/fail", "answered 500 Internal Server Error for /fail: the index is broken; see the agent's log: journalctl -u onramp"},
		{addr, "/html", "answered /html with a body that is not the expected JSON"},
		{"bad host%zz", "/ok", `status address "bad host%zz" is not host:port`},
		{"127.0.0.1:1", "/ok", "no agent answers on 127.0.0.1:1 (is onramp running?"},
	} {
		err := Get(context.Background(), tc.addr, tc.path, &rep)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%s: %v, want %q", tc.addr, tc.path, err, tc.want)
		}
	}
}

func TestFetchNameTableAcceptsAListOfNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`["a.example.", "b.example."]`))
	}))
	defer srv.Close()
	s, err := FetchNameTable(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil || s.Names != 2 || len(s.Entries) != 2 || s.Entries[1].Name != "b.example." {
		t.Errorf("%v, %+v", err, s)
	}
}
