package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// filterKeyPolicy is basePolicy with a first approval rule whose filters
// have one explicit key ("? key": YAML's 1,024-character limit on keys does
// not apply to it) over n values.
func filterKeyPolicy(key string, n int) []byte {
	rule := fmt.Sprintf("      - filters:\n          ? %s\n          : [%s]\n        approveAfterDays: 7\n", key, strings.TrimSuffix(strings.Repeat("a,", n), ","))
	return []byte(strings.Replace(basePolicy, "      - classifications: [Security, Bugfix]\n", rule+"      - classifications: [Security, Bugfix]\n", 1))
}

// TestLongMapKeyIsRefusedBeforeItsValues: every value under a mapping key
// has a field path that repeats the key, so a long key over a long list cost
// memory in their product (a 100,000-character filter key over 20,000
// values: 4.3 GB). A key past maxMapKey is refused, its values unread, and
// the paths the decoder keeps stay in proportion to the file. The measure is
// the bytes of those paths, not time or the machine's memory.
func TestLongMapKeyIsRefusedBeforeItsValues(t *testing.T) {
	key := strings.Repeat("K", 10000)
	data := filterKeyPolicy(key, 5000)

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	d := &decoder{file: "policies/web.yaml", pos: map[string]Pos{}}
	var p Policy
	d.decode(doc.Content[0], reflect.ValueOf(&p).Elem(), "")
	paths := 0
	for k := range d.pos {
		paths += len(k)
	}
	if paths > 4*len(data) {
		t.Errorf("the decoder kept %d bytes of field paths for a %d-byte file", paths, len(data))
	}

	_, probs := Parse("policies/web.yaml", data)
	if want := "a key of spec.baseline.approvalRules[0].filters has 10,000 characters; keys here are at most 128"; len(probs) != 1 || !strings.Contains(probs[0].Message, want) {
		t.Errorf("problems:\n%.2000s\nwant one saying %q", probs.Error(), want)
	}
	if len(probs.Error()) > 1000 {
		t.Errorf("the problem repeats the key: %d bytes", len(probs.Error()))
	}
}

// TestMapKeyLimit: the limit is an AWS tag key's, in Unicode characters as
// AWS and the schema count them: 128 characters still load, in ASCII or in
// characters of three bytes each (a Japanese tag key), and 129 are refused
// by the decoder. A value may have 256 characters, whatever their bytes.
func TestMapKeyLimit(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       string
	}{
		{strings.Repeat("k", 128), "web", ""},
		{strings.Repeat("環", 128), "web", ""},
		{"App", strings.Repeat("é", 256), ""},
		{"App", strings.Repeat("é", 257), "tag value for App is longer than 256 characters"},
		{strings.Repeat("k", 129), "web", "a key of spec.phases[0].targets.tags has 129 characters; keys here are at most 128"},
		{strings.Repeat("環", 129), "web", "a key of spec.phases[0].targets.tags has 129 characters; keys here are at most 128"},
	} {
		src := strings.Replace(basePolicy, "tags: {Environment: staging, App: web}", "tags: {Environment: staging, "+tc.key+": "+tc.value+"}", 1)
		_, probs := Parse("policies/web.yaml", []byte(src))
		name := fmt.Sprintf("%d-character tag key, %d-character value", len([]rune(tc.key)), len([]rune(tc.value)))
		switch {
		case tc.want == "" && len(probs) > 0:
			t.Errorf("%s: %v", name, probs)
		case tc.want != "" && (len(probs) != 1 || !strings.Contains(probs[0].Message, tc.want)):
			t.Errorf("%s: %v, want %q", name, probs, tc.want)
		}
	}
}
