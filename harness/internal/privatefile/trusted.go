package privatefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks bounds the symbolic links CheckTrusted follows, as the kernel
// bounds path resolution.
const maxLinks = 40

// Trust names the users whose directories a run may write below: the
// effective user, root, and, when root runs through sudo, the user who
// invoked it (they could become root anyway); and the groups whose members
// may write there: root's and those users' own.
type Trust struct {
	UIDs []uint32
	GIDs []uint32
}

// CurrentTrust is the Trust of this process: its effective user, root, and
// SUDO_UID when the process runs as root; root's group, and the effective
// group (SUDO_GID) when it is that user's own.
func CurrentTrust() Trust {
	uid, gid := os.Geteuid(), os.Getegid()
	t := Trust{UIDs: []uint32{0, uint32(uid)}, GIDs: []uint32{0}}
	if ownGroup(uid, gid) {
		t.GIDs = append(t.GIDs, uint32(gid))
	}
	if uid != 0 {
		return t
	}
	sudoUID, err := strconv.ParseUint(os.Getenv("SUDO_UID"), 10, 32)
	if err != nil {
		return t
	}
	t.UIDs = append(t.UIDs, uint32(sudoUID))
	if sudoGID, err := strconv.ParseUint(os.Getenv("SUDO_GID"), 10, 32); err == nil && ownGroup(int(sudoUID), int(sudoGID)) {
		t.GIDs = append(t.GIDs, uint32(sudoGID))
	}
	return t
}

// ownGroup reports whether group gid is user uid's own: named after the
// user, as Debian and Fedora give each user a group of its own. Members of
// a shared group (users, staff) could swap what a run writes in a
// directory their group may write.
func ownGroup(uid, gid int) bool {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return false
	}
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	return err == nil && g.Name == u.Username
}

// groupName is "name (gid)", or the gid alone when it has no name.
func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return fmt.Sprintf("%s (%d)", g.Name, gid)
	}
	return strconv.FormatUint(uint64(gid), 10)
}

// UntrustedError says which directory on the way to Path another user
// controls, so that they could swap what a run writes there (a kubeconfig
// with cluster-admin credentials, say) for a link to a file of theirs.
type UntrustedError struct {
	Path, Dir, Reason string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%s: directory %s %s, who could replace what the run writes there (kubeconfigs with "+
		"admin credentials, artifacts) with links elsewhere: choose a directory no other user can write, or run as its owner",
		e.Path, e.Dir, e.Reason)
}

// CheckTrusted returns an *UntrustedError when a directory on the way to
// path (following symbolic links, the links' own directories included) is
// owned by a user t does not trust, or is writable by other users without
// the sticky bit. Components that do not exist yet are not judged: the run
// creates them inside a directory already checked.
func (t Trust) CheckTrusted(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	return t.checkFrom(path, "/", strings.Split(strings.TrimPrefix(abs, "/"), "/"), 0)
}

// checkFrom checks dir, then each of rest below it, following links.
func (t Trust) checkFrom(orig, dir string, rest []string, links int) error {
	if err := t.checkDir(orig, dir); err != nil {
		return err
	}
	for i, name := range rest {
		if name == "" || name == "." {
			continue
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("checking %s: %w", orig, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxLinks {
				return fmt.Errorf("checking %s: more than %d symbolic links on the way", orig, maxLinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("checking %s: %w", orig, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			parts := strings.Split(strings.TrimPrefix(filepath.Clean(target), "/"), "/")
			return t.checkFrom(orig, "/", append(parts, rest[i+1:]...), links)
		case !fi.IsDir():
			return nil // the caller reports a file where a directory belongs
		}
		if err := t.checkDir(orig, next); err != nil {
			return err
		}
		dir = next
	}
	return nil
}

// checkDir judges one existing directory by its owner and mode.
func (t Trust) checkDir(orig, dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("checking %s: %w", orig, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	perm, sticky := fi.Mode().Perm(), fi.Mode()&fs.ModeSticky != 0
	switch {
	case !slices.Contains(t.UIDs, st.Uid):
		return &UntrustedError{Path: orig, Dir: dir, Reason: fmt.Sprintf("is owned by uid %d", st.Uid)}
	case perm&0o002 != 0 && !sticky:
		return &UntrustedError{Path: orig, Dir: dir, Reason: "is writable by every user (mode " + perm.String() + ", no sticky bit)"}
	case perm&0o020 != 0 && !sticky && !slices.Contains(t.GIDs, st.Gid):
		return &UntrustedError{Path: orig, Dir: dir, Reason: "is writable by group " + groupName(st.Gid)}
	}
	return nil
}
