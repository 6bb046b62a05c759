package annotate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestFormatEscapes(t *testing.T) {
	a := Annotation{Level: "error", File: "policies/a,b:c\r::x.yaml", Line: 3, Col: 5, Title: "t\n::y", Message: "bad 100%\n::warning::injected\r::set-output name=x::\u202e\x1b"}
	got := a.Format()
	want := "::error col=5,file=policies/a%2Cb%3Ac%0D%3A%3Ax.yaml,line=3,title=t %3A%3Ay::bad 100%25%0A::warning::injected%0A::set-output name=x::\\u202e\\u001b"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if strings.Count(got, "\n") != 0 {
		t.Fatal("an annotation must stay on one line")
	}
}

func TestWriteLimits(t *testing.T) {
	for _, n := range []int{1, 10, 11, 25} {
		var as []Annotation
		for i := 0; i < n; i++ {
			as = append(as, Annotation{Message: fmt.Sprintf("problem %d", i)})
		}
		as = append(as, Annotation{Level: "warning", Message: "w"})
		var b bytes.Buffer
		Write(&b, as)
		errs := strings.Count(b.String(), "::error")
		if errs > Limit {
			t.Errorf("%d problems: %d error annotations, limit %d", n, errs, Limit)
		}
		if n <= Limit && errs != n {
			t.Errorf("%d problems: want all %d shown, got %d", n, n, errs)
		}
		if n > Limit && !strings.Contains(b.String(), fmt.Sprintf("%d more errors", n-(Limit-1))) {
			t.Errorf("%d problems: missing summary line:\n%s", n, b.String())
		}
		if strings.Count(b.String(), "::warning") != 1 {
			t.Errorf("warnings are counted separately")
		}
	}
}

// TestWriteManyIsLinear: validate annotates every problem of every policy
// file a pull request brings, so Write must not rescan the list per
// annotation (it did, past the ninth of a level: 100,000 problems took a
// minute, so this million would take hours and time the test out; counted
// once they take well under a second). The summaries still count every
// annotation left out, per level.
func TestWriteManyIsLinear(t *testing.T) {
	const n = 1000000
	as := make([]Annotation, 0, n+2)
	for range n {
		as = append(as, Annotation{Message: "bad"})
	}
	as = append(as, Annotation{Level: "warning", Message: "w1"}, Annotation{Level: "notice", Message: "n1"})
	var b bytes.Buffer
	Write(&b, as)
	got := b.String()
	if e := strings.Count(got, "::error"); e != Limit {
		t.Errorf("%d error annotations, want %d", e, Limit)
	}
	if want := fmt.Sprintf("::error::%d more errors not shown", n-(Limit-1)); !strings.Contains(got, want) {
		t.Errorf("no %q in:\n%s", want, got)
	}
	if !strings.Contains(got, "::warning::w1") || !strings.Contains(got, "::notice::n1") || strings.Contains(got, "more warnings") {
		t.Errorf("other levels are shown in full:\n%s", got)
	}
}
