package status

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/onramp-mesh/onramp/agent/nametable"
)

// Get reads the JSON document at path (e.g. "/debug/nametable") from the
// status server at addr into v. Every failure is an error that says what to
// do: a bad address, no agent answering, an HTTP error status (with the
// first line of its body), or a body that is not the expected JSON.
func Get(ctx context.Context, addr, path string, v any) error {
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("status address %q is not host:port (e.g. 127.0.0.1:15020): %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no agent answers on %s (is onramp running? systemctl status onramp): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
		msg := fmt.Sprintf("%s answered %s for %s", addr, resp.Status, path)
		if line = strings.TrimSpace(line); line != "" {
			msg += ": " + line
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			msg += "; is --addr the agent's status address, and is the agent as new as this command (onramp version)?"
		case resp.StatusCode >= 500:
			msg += "; see the agent's log: journalctl -u onramp"
		}
		return fmt.Errorf("%s", msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s answered %s with a body that is not the expected JSON: %w; is --addr the agent's status address?", addr, path, err)
	}
	return nil
}

// FetchNameTable reads the names a running agent serves. It accepts both
// forms of /debug/nametable: the index's Snapshot, and a plain list of the
// names answered (which then become entries with only a name).
func FetchNameTable(ctx context.Context, addr string) (nametable.Snapshot, error) {
	var raw json.RawMessage
	if err := Get(ctx, addr, "/debug/nametable", &raw); err != nil {
		return nametable.Snapshot{}, err
	}
	var s nametable.Snapshot
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return s, fmt.Errorf("%s answered /debug/nametable with neither a name table snapshot nor a list of names: %w", addr, err)
	}
	s.Names = len(names)
	for _, n := range names {
		s.Entries = append(s.Entries, nametable.Entry{Name: n})
	}
	return s, nil
}
