package promote

import (
	"reflect"
	"testing"
)

// FuzzDecode: whatever a bucket holds, Decode refuses it or returns a
// record that survives its own round trip; it never panics.
func FuzzDecode(f *testing.F) {
	rec := record(Passed, start)
	rec.Schema, rec.Seq = Schema, 1
	good, _ := rec.Encode()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":"` + Schema + `","seq":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if r != nil {
				t.Fatal("a record with an error")
			}
			return
		}
		again, err := r.Encode()
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		r2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the record: %v\n%+v\n%+v", err, r, r2)
		}
	})
}
