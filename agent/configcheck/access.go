package configcheck

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Access bits, as in a file mode's rwx.
const (
	read   = 4
	write  = 2
	search = 1 // execute; for a directory, entering it
)

// lookupAccount returns the system user name, or nil when it does not exist.
func lookupAccount(name string) *Account {
	u, err := user.Lookup(name)
	if err != nil {
		return nil
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil
	}
	a := &Account{Name: name, UID: uint32(uid)}
	gids, _ := u.GroupIds()
	if !slices.Contains(gids, u.Gid) {
		gids = append(gids, u.Gid)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.Groups = append(a.Groups, uint32(n))
		}
	}
	return a
}

// checkAccess reports when acct cannot reach path (every parent directory
// searchable) or lacks the access want on it. It reads the mode bits and
// owners only (no ACLs). A nil acct, or a path that does not exist, is not
// checked here. It returns whether it added no finding.
func checkAccess(acct *Account, key, path string, want uint32, add addFunc) bool {
	if acct == nil || acct.UID == 0 {
		return true
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return true
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(dir); err == nil && !allowed(acct, st, search) {
			add(Error, key, "the agent runs as %s and cannot enter %s (%s), so it cannot reach %s; give %s search access, e.g. chmod o+x %s", acct.Name, dir, describe(st), abs, acct.Name, dir)
			return false
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	st, err := os.Stat(abs)
	if err != nil || allowed(acct, st, want) {
		return true
	}
	add(Error, key, "the agent runs as %s and cannot %s %s (%s); %s", acct.Name, verb(want), abs, describe(st), fix(acct, st, abs, want))
	return false
}

// allowed applies the owner, group or other bits of st to acct.
func allowed(acct *Account, st os.FileInfo, want uint32) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := uint32(st.Mode().Perm())
	switch {
	case sys.Uid == acct.UID:
		perm >>= 6
	case slices.Contains(acct.Groups, sys.Gid):
		perm >>= 3
	}
	return perm&want == want
}

func describe(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return st.Mode().String()
	}
	return fmt.Sprintf("owner %s, group %s, mode %04o", userName(sys.Uid), groupName(sys.Gid), st.Mode().Perm())
}

func verb(want uint32) string {
	var v []string
	if want&read != 0 {
		v = append(v, "read")
	}
	if want&write != 0 {
		v = append(v, "write")
	}
	return strings.Join(v, " and ")
}

func fix(acct *Account, st os.FileInfo, path string, want uint32) string {
	if want&write != 0 {
		return fmt.Sprintf("chown -R %s %s", acct.Name, path)
	}
	mode := "0640"
	if st.IsDir() {
		mode = "0750"
	}
	return fmt.Sprintf("onramp bootstrap installs it with the owners the agent needs, or: chgrp %s %s && chmod %s %s", acct.Name, path, mode, path)
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return g.Name
	}
	return strconv.FormatUint(uint64(gid), 10)
}
