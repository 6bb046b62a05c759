package ghaction

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// markerCount is how many comments on issue start with marker, and the
// body of the last of them.
func markerCount(f *fakeGitHub, issue int, marker string) (n int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cm := range f.comments[issue] {
		if b := cm["body"].(string); strings.HasPrefix(b, marker+"\n") {
			n, body = n+1, b
		}
	}
	return n, body
}

// TestUpsertListsAnIssueOncePerRun: a run posts one comment per policy on
// the tracking issue. Listing the issue for each of them made the listing
// calls grow with the square of the policies (300 policies: 600 calls a
// run, 1,000: 5,500); a comment a listing has met is edited without
// listing again, so a run with every comment in place lists each page a
// few times at most.
func TestUpsertListsAnIssueOncePerRun(t *testing.T) {
	const policies = 300
	f, srv := newServer(t)
	ctx := context.Background()
	marker := func(i int) string { return fmt.Sprintf("<!-- patchgate:run:p%d -->", i) }
	upsertAll := func(body string) {
		c := commentsFor(t, f, srv, "ghs_token") // a run: a client of its own
		for i := range policies {
			if _, err := c.Upsert(ctx, 1, marker(i), body); err != nil {
				t.Fatal(err)
			}
		}
	}
	upsertAll("first run")
	lists, edits := f.count("GET", "/issues/1/comments"), f.count("PATCH", "")
	upsertAll("second run")
	lists, edits = f.count("GET", "/issues/1/comments")-lists, f.count("PATCH", "")-edits
	// Pages of 100: a listing of one page finds policies 0-99, of two
	// 100-199, of three the rest.
	if lists != 1+2+3 {
		t.Errorf("the second run listed %d pages, want 6", lists)
	}
	if edits != policies {
		t.Errorf("the second run made %d edits, want %d", edits, policies)
	}
	for i := range policies {
		if n, body := markerCount(f, 1, marker(i)); n != 1 || !strings.HasSuffix(body, "second run") {
			t.Fatalf("policy %d: %d comments, the last %q", i, n, body)
		}
	}
}

// TestUpsertListsAgainWhenItsCommentIsGone: a comment deleted after a
// listing met it is not an error (nor "no access"): the issue is listed
// again and the comment made anew.
func TestUpsertListsAgainWhenItsCommentIsGone(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	const m = "<!-- patchgate:run:web -->"
	if _, err := c.Upsert(ctx, 3, m, "one"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.comments[3] = nil // deleted by a maintainer
	f.mu.Unlock()
	if _, err := c.Upsert(ctx, 3, m, "two"); err != nil {
		t.Fatalf("after the comment was deleted: %v", err)
	}
	if n, body := markerCount(f, 3, m); n != 1 || body != m+"\ntwo" {
		t.Errorf("%d comments, the last %q", n, body)
	}
}

// TestUpsertAsksBeforeCreating: what a listing did not meet is asked
// again before a comment is made, so a comment another run made since is
// edited, not doubled.
func TestUpsertAsksBeforeCreating(t *testing.T) {
	f, srv := newServer(t)
	ctx := context.Background()
	a, b := commentsFor(t, f, srv, "ghs_token"), commentsFor(t, f, srv, "ghs_token")
	const web, db = "<!-- patchgate:run:web -->", "<!-- patchgate:run:db -->"
	if _, err := a.Upsert(ctx, 5, web, "a web"); err != nil { // a lists the issue
		t.Fatal(err)
	}
	if _, err := b.Upsert(ctx, 5, db, "b db"); err != nil { // another run comments
		t.Fatal(err)
	}
	if _, err := a.Upsert(ctx, 5, db, "a db"); err != nil {
		t.Fatal(err)
	}
	if n, body := markerCount(f, 5, db); n != 1 || body != db+"\na db" {
		t.Errorf("%d comments for db, the last %q", n, body)
	}
}
