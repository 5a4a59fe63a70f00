package pgtemp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// owner is the system user that owns a server's files and runs its
// processes: the postgres user when we are root, as PostgreSQL refuses to run
// as root, and ourselves otherwise.
type owner struct {
	uid, gid int
	asOther  bool // uid differs from ours, so processes need credentials
}

func serverOwner() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return owner{}, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user, and there is no postgres user "+
			"(installing Debian's postgresql package creates it): %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return owner{}, fmt.Errorf("postgres user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return owner{}, fmt.Errorf("postgres group id %q: %w", u.Gid, err)
	}
	return owner{uid: uid, gid: gid, asOther: true}, nil
}

// command prepares a program to run as the owner, in a process group of its
// own so that Kill can take down the postmaster with all its children, and
// with a fixed locale so that initdb does not depend on the caller's.
func (o owner) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.credential()}
	return cmd
}

// credential is what a process needs to run as the owner, or nil when the
// owner is ourselves.
func (o owner) credential() *syscall.Credential {
	if !o.asOther {
		return nil
	}
	return &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
}

// An Owner is the user that owns a server's files and runs its processes,
// for the harness's other servers (internal/pgcluster's pg_auto_failover
// nodes), which PostgreSQL's refusal to run as root concerns alike.
type Owner struct{ o owner }

// ServerOwner returns the postgres user when we are root, ourselves otherwise.
func ServerOwner() (Owner, error) {
	o, err := serverOwner()
	return Owner{o}, err
}

// Own gives the owner the tree at root.
func (o Owner) Own(root string) error { return o.o.own(root) }

// Credential is what a process needs to run as the owner, or nil when the
// owner is ourselves.
func (o Owner) Credential() *syscall.Credential { return o.o.credential() }

// own gives the owner the tree at root.
func (o owner) own(root string) error {
	if !o.asOther {
		return nil
	}
	return filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.uid, o.gid)
	})
}
