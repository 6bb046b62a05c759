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
