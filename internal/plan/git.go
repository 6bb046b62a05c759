package plan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/patchgate/patchgate/internal/policy"
)

// Git reads policy files from history with the git command line, which is
// what every runner has and what understands every ref syntax.
type Git struct {
	Dir string // the working directory git runs in ("" = current)
}

func (g Git) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.Dir
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
		}
		return out, fmt.Errorf("running git: %w", err)
	}
	return out, nil
}

// Resolve turns ref into a commit id, explaining the usual CI causes when
// it is missing: a shallow clone, or a branch that was never fetched.
func (g Git) Resolve(ctx context.Context, ref string) (string, error) {
	out, err := g.run(ctx, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := g.run(ctx, nil, "rev-parse", "--git-dir"); err != nil {
		return "", fmt.Errorf("plan needs a git checkout to read the base policies: %w", err)
	}
	if sh, _ := g.run(ctx, nil, "rev-parse", "--is-shallow-repository"); strings.TrimSpace(string(sh)) == "true" {
		return "", fmt.Errorf("the base %s is not in this shallow clone: check out with full history (actions/checkout with `fetch-depth: 0`), or fetch it (`git fetch --deepen=50 origin %s`)", ref, ref)
	}
	return "", fmt.Errorf("the base %s is not a commit in this repository: fetch it (`git fetch origin %s`) or pass --base with a ref that exists", ref, ref)
}

// LoadAt loads the policies in dir (relative to the working directory, as
// for the head) as they are at commit.
func (g Git) LoadAt(ctx context.Context, commit, dir string) (*policy.Set, error) {
	if filepath.IsAbs(dir) {
		return nil, fmt.Errorf("--policies %s: give the directory relative to the repository checkout to compare it with its base", dir)
	}
	dir = path.Clean(filepath.ToSlash(dir))
	prefixOut, err := g.run(ctx, nil, "rev-parse", "--show-prefix")
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSpace(string(prefixOut))
	fsys := fstest.MapFS{}
	// The directory itself, so that a base without it loads as empty.
	fsys[dir] = &fstest.MapFile{Mode: os.ModeDir | 0o755}
	isDir := true
	ls, err := g.run(ctx, nil, "ls-tree", "-z", "--full-name", "--name-only", commit, "--", dir+"/")
	if err != nil {
		return nil, err
	}
	names := strings.Split(strings.TrimRight(string(ls), "\x00"), "\x00")
	if len(ls) == 0 {
		// Perhaps dir names a file.
		if one, err := g.run(ctx, nil, "ls-tree", "-z", "--full-name", "--name-only", commit, "--", dir); err == nil && len(one) > 0 {
			names, isDir = []string{strings.TrimRight(string(one), "\x00")}, false
			delete(fsys, dir)
		} else {
			names = nil
		}
	}
	var req bytes.Buffer
	var keep []string
	for _, full := range names {
		if full == "" || !policy.IsPolicyFile(full) {
			continue
		}
		keep = append(keep, full)
		fmt.Fprintf(&req, "%s:%s\n", commit, full)
	}
	if len(keep) > 0 {
		out, err := g.run(ctx, &req, "cat-file", "--batch")
		if err != nil {
			return nil, err
		}
		r := bufio.NewReader(bytes.NewReader(out))
		for _, full := range keep {
			header, err := r.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("reading %s at %s: %w", full, commit, err)
			}
			f := strings.Fields(header)
			if len(f) != 3 || f[1] != "blob" {
				continue // a directory or submodule named *.yaml
			}
			size, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("reading %s at %s: bad header %q", full, commit, header)
			}
			data := make([]byte, size+1) // content and its newline
			if _, err := io.ReadFull(r, data); err != nil {
				return nil, fmt.Errorf("reading %s at %s: %w", full, commit, err)
			}
			fsys[strings.TrimPrefix(full, prefix)] = &fstest.MapFile{Data: data[:size], Mode: 0o644}
		}
	}
	if !isDir && len(fsys) == 0 {
		return &policy.Set{}, nil
	}
	return policy.Load(fsys, dir)
}

// DefaultBase is the base a plan compares with: the pull request's base
// commit from the event, else origin/<base branch>, else origin's default
// branch. name is how a reader knows it: the base branch for the event's
// commit (a report shows "main (abc1234)", not 40 hex digits), else rev.
func DefaultBase(ctx context.Context, g Git, getenv func(string) string) (rev, name string) {
	if p := getenv("GITHUB_EVENT_PATH"); p != "" && strings.HasPrefix(getenv("GITHUB_EVENT_NAME"), "pull_request") {
		if data, err := os.ReadFile(p); err == nil {
			var ev struct {
				PullRequest struct {
					Base struct {
						SHA string `json:"sha"`
						Ref string `json:"ref"`
					} `json:"base"`
				} `json:"pull_request"`
			}
			if json.Unmarshal(data, &ev) == nil && ev.PullRequest.Base.SHA != "" {
				name := ev.PullRequest.Base.Ref
				if name == "" {
					name = getenv("GITHUB_BASE_REF")
				}
				if name == "" {
					name = ev.PullRequest.Base.SHA
				}
				return ev.PullRequest.Base.SHA, name
			}
		}
	}
	if b := getenv("GITHUB_BASE_REF"); b != "" {
		return "origin/" + b, "origin/" + b
	}
	if out, err := g.run(ctx, nil, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); err == nil {
		ref := strings.TrimSpace(string(out))
		return ref, ref
	}
	return "origin/main", "origin/main"
}
