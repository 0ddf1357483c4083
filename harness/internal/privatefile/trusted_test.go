package privatefile

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// foreignUID owns the directories of "another user" in these tests.
const foreignUID = 54321

func selfTrust() Trust {
	return Trust{UIDs: []uint32{0, uint32(os.Geteuid())}, GIDs: []uint32{0, uint32(os.Getegid())}}
}

// chownForeign makes dir another user's; only root can.
func chownForeign(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making a directory another user's needs root")
	}
	if err := os.Chown(dir, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}
}

func wantUntrusted(t *testing.T, err error, dir, reason string) {
	t.Helper()
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		t.Fatalf("want an *UntrustedError naming %s, got %v", dir, err)
	}
	if ue.Dir != dir || !strings.Contains(ue.Reason, reason) {
		t.Errorf("untrusted dir %s (%s), want %s (%s)", ue.Dir, ue.Reason, dir, reason)
	}
}

func TestCheckTrustedRefusesAnotherUsersCheckout(t *testing.T) {
	checkout := filepath.Join(t.TempDir(), "checkout")
	if err := os.Mkdir(checkout, 0o755); err != nil {
		t.Fatal(err)
	}
	chownForeign(t, checkout)
	work := filepath.Join(checkout, ".work", "lane")
	wantUntrusted(t, selfTrust().CheckTrusted(work), checkout, "owned by uid 54321")

	// The user who ran sudo is trusted: the same checkout passes.
	sudo := selfTrust()
	sudo.UIDs = append(sudo.UIDs, foreignUID)
	if err := sudo.CheckTrusted(work); err != nil {
		t.Errorf("with the checkout's owner trusted: %v", err)
	}
}

func TestCheckTrustedJudgesModes(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	open := mk("open", 0o777)
	wantUntrusted(t, selfTrust().CheckTrusted(filepath.Join(open, "work")), open, "writable by every user")

	sticky := mk("sticky", 0o777|os.ModeSticky)
	if err := selfTrust().CheckTrusted(filepath.Join(sticky, "work", "artifacts")); err != nil {
		t.Errorf("a sticky shared directory, as /tmp: %v", err)
	}
	own := mk("own", 0o700)
	if err := selfTrust().CheckTrusted(filepath.Join(own, "not", "yet")); err != nil {
		t.Errorf("own directory with missing components: %v", err)
	}

	group := mk("group", 0o770)
	if os.Geteuid() == 0 {
		if err := os.Chown(group, -1, foreignUID); err != nil {
			t.Fatal(err)
		}
		wantUntrusted(t, selfTrust().CheckTrusted(group), group, "writable by group 54321")
	}
}

func TestCheckTrustedFollowsLinks(t *testing.T) {
	base := t.TempDir()
	elsewhere := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	chownForeign(t, elsewhere)
	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	// A link in a trusted directory that leads through another user's one.
	if err := os.Symlink("../elsewhere", filepath.Join(own, ".work")); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, selfTrust().CheckTrusted(filepath.Join(own, ".work", "artifacts")), elsewhere, "owned by uid 54321")
}

// TestSharedGroupIsNotTrusted: a directory its group may write is trusted
// only when that group is root's or the user's own; a shared group's other
// members could swap what the run writes there.
func TestSharedGroupIsNotTrusted(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Skipf("no user 0 to look up: %v", err)
	}
	rootGroup, err := user.LookupGroupId("0")
	if err != nil || rootGroup.Name != root.Username {
		t.Skipf("root's group is not named after root here: %v", err)
	}
	if !ownGroup(0, 0) {
		t.Error("root's own group is not root's")
	}
	if ownGroup(0, foreignUID) {
		t.Errorf("group %d (no such group) counts as root's own", foreignUID)
	}
	shared, err := user.LookupGroup("users")
	if err != nil {
		t.Skipf("no shared group users here: %v", err)
	}
	gid, _ := strconv.Atoi(shared.Gid)
	if ownGroup(os.Geteuid(), gid) {
		t.Errorf("the shared group users counts as uid %d's own", os.Geteuid())
	}
	if os.Geteuid() != 0 {
		return // only root can give a directory to group users
	}
	dir := filepath.Join(t.TempDir(), "team")
	if err := os.Mkdir(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil { // past the umask
		t.Fatal(err)
	}
	wantUntrusted(t, CurrentTrust().CheckTrusted(filepath.Join(dir, "work")), dir, "is writable by group users ("+shared.Gid+")")
}
