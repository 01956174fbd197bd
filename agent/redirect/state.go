package redirect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
)

// RecordFile is the record of what the redirect put in place, relative to
// the agent's state directory.
const RecordFile = "redirect/state.json"

// RecordPath returns the record's path under stateDir.
func RecordPath(stateDir string) string { return filepath.Join(stateDir, RecordFile) }

// record writes s to stateDir before the change it describes is made, so
// that a crash between the two still leaves a record to undo from.
func record(stateDir string, s State) error {
	if stateDir == "" {
		return nil
	}
	path := RecordPath(stateDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("redirect: record %s: %w", path, err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o640); err != nil {
		return fmt.Errorf("redirect: record %s: %w", path, err)
	}
	return nil
}

// forget removes the record once everything it describes is undone.
func forget(stateDir string) error {
	if stateDir == "" {
		return nil
	}
	if err := os.Remove(RecordPath(stateDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// Recorded returns the record under stateDir; ok is false when there is
// none (nothing in place).
func Recorded(stateDir string) (s State, ok bool, err error) {
	data, err := os.ReadFile(RecordPath(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("redirect: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, false, fmt.Errorf("redirect: %s is not a redirect record: %v; remove it by hand once the redirect is undone", RecordPath(stateDir), err)
	}
	return s, true, nil
}

// RemoveRecorded undoes what the record under stateDir says the redirect
// put in place, without a running agent: it deletes onramp's nftables
// table, or reverts onramp's link in resolved and deletes the link if
// onramp created it, and then the record. With no record it does nothing
// and returns (State{}, nil). Running it twice is safe. It returns the
// record it acted on.
//
// It is what `onramp redirect remove` and the unit's ExecStopPost run, so
// that a dead agent never leaves the host's DNS pointing at nothing.
func RemoveRecorded(ctx context.Context, stateDir string) (State, error) {
	return removeRecorded(ctx, stateDir)
}

// HarmlessWhileDown reports whether the redirect s describes leaves the
// host's DNS working while the agent is down and systemd holds its
// sockets: resolved routing only the mesh's domains to onramp (mesh
// lookups wait for the agent, every other name keeps its path). An
// nftables redirect, or captureAll, sends every name to the agent's
// sockets: a crash loop would black-hole the host's DNS.
func HarmlessWhileDown(s State) bool {
	return s.Backend == Resolved && !s.CaptureAll
}

// RemoveStopping is RemoveRecorded for the unit's ExecStopPost, which runs
// after every stop of the agent, a crash before a restart included: it
// keeps a redirect that is HarmlessWhileDown (removing it would fail mesh
// lookups during every restart) and removes the others. It returns the
// record and whether it removed it.
func RemoveStopping(ctx context.Context, stateDir string) (State, bool, error) {
	s, ok, err := Recorded(stateDir)
	if err != nil || !ok || HarmlessWhileDown(s) {
		return s, false, err
	}
	s, err = removeRecorded(ctx, stateDir)
	return s, err == nil, err
}

func removeRecorded(ctx context.Context, stateDir string) (State, error) {
	s, ok, err := Recorded(stateDir)
	if err != nil || !ok {
		return s, err
	}
	switch s.Backend {
	case Nftables:
		err = deleteTable(nil, s.Table)
	case Resolved:
		err = undoLink(ctx, nil, s)
	case None, "":
	default:
		err = fmt.Errorf("redirect: the record in %s names an unknown backend %q", RecordPath(stateDir), s.Backend)
	}
	if err != nil {
		return s, err
	}
	return s, forget(stateDir)
}
