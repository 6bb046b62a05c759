package awssim

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// snapshot is one simulated EBS snapshot.
type snapshot struct {
	id, volumeID, instanceID, account, region, description string
	tags                                                   map[string]string
	start                                                  time.Time
	fails                                                  bool
	deleted                                                bool
}

// SnapshotRecord is a snapshot as tests see it.
type SnapshotRecord struct {
	ID, VolumeID, InstanceID, Account, Region string
	Tags                                      map[string]string
	Start                                     time.Time
	Deleted                                   bool
}

// Snapshots returns every snapshot made, deleted ones included.
func (s *Sim) Snapshots() []SnapshotRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SnapshotRecord
	for _, sn := range s.safety.snapshots {
		out = append(out, SnapshotRecord{ID: sn.id, VolumeID: sn.volumeID, InstanceID: sn.instanceID, Account: sn.account,
			Region: sn.region, Tags: sn.tags, Start: sn.start, Deleted: sn.deleted})
	}
	return out
}

// AddSnapshot plants a snapshot made at start (e.g. an old one for the
// retention sweep); it is completed.
func (s *Sim) AddSnapshot(account, region, volumeID string, start time.Time, tags map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.safety.nextSnap++
	sn := &snapshot{id: fmt.Sprintf("snap-%017x", s.safety.nextSnap), volumeID: volumeID, account: account, region: region, tags: tags, start: start}
	s.safety.snapshots = append(s.safety.snapshots, sn)
	return sn.id
}

// volumes are an instance's EBS volumes: a root volume, and a data volume
// on Linux.
func (in *Instance) volumes() []string {
	hex := strings.TrimPrefix(in.ID, "i-")
	if len(hex) > 16 {
		hex = hex[len(hex)-16:]
	}
	v := []string{"vol-a" + hex}
	if !strings.Contains(in.Platform, "Windows") {
		v = append(v, "vol-b"+hex)
	}
	return v
}

func (s *Sim) snapshotState(sn *snapshot, now time.Time) (state, progress string) {
	d := s.sc.SnapshotDuration
	if d == 0 {
		d = 5 * time.Minute
	}
	// A failing snapshot is in error as soon as DescribeSnapshots sees it
	// (CreateSnapshots itself answers pending).
	switch {
	case sn.fails:
		return "error", "0%"
	case now.Before(sn.start.Add(d / 2)):
		return "pending", "0%"
	case now.Before(sn.start.Add(d)):
		return "pending", "50%"
	}
	return "completed", "100%"
}

// serveEC2 answers EC2's query protocol for the snapshot calls.
func (s *Sim) serveEC2(w http.ResponseWriter, form url.Values, account, region string) {
	action := form.Get("Action")
	err, drop := s.preflight("ec2:" + action)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if err == nil {
		var out string
		out, err = s.ec2(action, form, account, region)
		if drop { // the call took effect; its answer is lost
			dropConnection(w)
			return
		}
		if err == nil {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%[1]sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>sim</requestId>%[2]s</%[1]sResponse>`, action, out)
			return
		}
	}
	ae := err.(*apiError)
	if ae.Code == "ThrottlingException" {
		ae = &apiError{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Status: 503}
	}
	w.WriteHeader(ae.Status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>sim</RequestID></Response>`, ae.Code, xmlText(ae.Message))
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// indexed collects a query list "Prefix.N" (N from 1) in order.
func indexed(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (s *Sim) ec2(action string, form url.Values, account, region string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	switch action {
	case "CreateSnapshots":
		id := form.Get("InstanceSpecification.InstanceId")
		in := s.byID[id]
		if in == nil || in.Account != account || in.Region != region {
			return "", &apiError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", id), Status: 400}
		}
		if form.Get("DryRun") == "true" {
			return "", &apiError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: 412}
		}
		tags := map[string]string{}
		for i := 1; ; i++ {
			p := fmt.Sprintf("TagSpecification.%d.", i)
			rt, ok := form[p+"ResourceType"]
			if !ok {
				break
			}
			if rt[0] != "snapshot" {
				return "", &apiError{Code: "InvalidParameterValue", Message: "CreateSnapshots tags only snapshots, not " + rt[0], Status: 400}
			}
			for j := 1; ; j++ {
				k, ok := form[fmt.Sprintf("%sTag.%d.Key", p, j)]
				if !ok {
					break
				}
				tags[k[0]] = form.Get(fmt.Sprintf("%sTag.%d.Value", p, j))
			}
		}
		if len(tags) > 50 {
			return "", &apiError{Code: "TagLimitExceeded", Message: "at most 50 tags per resource", Status: 400}
		}
		vols := in.volumes()
		if form.Get("InstanceSpecification.ExcludeBootVolume") == "true" {
			vols = vols[1:]
		}
		var b strings.Builder
		b.WriteString("<snapshotSet>")
		for _, vol := range vols {
			s.safety.nextSnap++
			sn := &snapshot{id: fmt.Sprintf("snap-%017x", s.safety.nextSnap), volumeID: vol, instanceID: in.ID, account: account, region: region,
				description: form.Get("Description"), tags: tags, start: now, fails: in.SnapshotFails}
			s.safety.snapshots = append(s.safety.snapshots, sn)
			st, prog := "pending", "0%"
			fmt.Fprintf(&b, `<item><snapshotId>%s</snapshotId><volumeId>%s</volumeId><state>%s</state><progress>%s</progress><startTime>%s</startTime><ownerId>%s</ownerId><volumeSize>8</volumeSize><encrypted>false</encrypted><description>%s</description>%s</item>`,
				sn.id, sn.volumeID, st, prog, now.UTC().Format(time.RFC3339Nano), account, xmlText(sn.description), tagSet(tags))
		}
		b.WriteString("</snapshotSet>")
		return b.String(), nil

	case "DescribeSnapshots":
		ids := indexed(form, "SnapshotId")
		filters := map[string][]string{}
		for i := 1; ; i++ {
			name, ok := form[fmt.Sprintf("Filter.%d.Name", i)]
			if !ok {
				break
			}
			filters[name[0]] = indexed(form, fmt.Sprintf("Filter.%d.Value", i))
		}
		if len(filters) > 0 && len(ids) > 0 {
			// Allowed by EC2, but patchgate never needs it; say so loudly.
			return "", &apiError{Code: "InvalidParameterCombination", Message: "awssim: SnapshotId with Filter is not simulated", Status: 400}
		}
		max := 1000
		if m := form.Get("MaxResults"); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil || n < 5 || n > 1000 {
				return "", &apiError{Code: "InvalidParameterValue", Message: "Value ( " + m + " ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", Status: 400}
			}
			max = n
		}
		start := tokenIndex(form.Get("NextToken"))
		var b strings.Builder
		b.WriteString("<snapshotSet>")
		n, i := 0, start
		found := map[string]bool{}
		for ; i < len(s.safety.snapshots) && n < max; i++ {
			sn := s.safety.snapshots[i]
			if sn.deleted || sn.account != account || sn.region != region || !matchSnapshot(sn, ids, filters, s, now) {
				continue
			}
			found[sn.id] = true
			st, prog := s.snapshotState(sn, now)
			msg := ""
			if st == "error" {
				msg = "<statusMessage>Snapshot creation failed: internal error copying volume data</statusMessage>"
			}
			fmt.Fprintf(&b, `<item><snapshotId>%s</snapshotId><volumeId>%s</volumeId><status>%s</status>%s<progress>%s</progress><startTime>%s</startTime><ownerId>%s</ownerId><volumeSize>8</volumeSize><encrypted>false</encrypted><description>%s</description>%s</item>`,
				sn.id, sn.volumeID, st, msg, prog, sn.start.UTC().Format(time.RFC3339Nano), sn.account, xmlText(sn.description), tagSet(sn.tags))
			n++
		}
		b.WriteString("</snapshotSet>")
		for _, id := range ids {
			if !found[id] {
				return "", &apiError{Code: "InvalidSnapshot.NotFound", Message: fmt.Sprintf("The snapshot '%s' does not exist.", id), Status: 400}
			}
		}
		if i < len(s.safety.snapshots) && len(ids) == 0 {
			fmt.Fprintf(&b, "<nextToken>%d</nextToken>", i)
		}
		return b.String(), nil

	case "DeleteSnapshot":
		id := form.Get("SnapshotId")
		for _, sn := range s.safety.snapshots {
			if sn.id == id && sn.account == account && sn.region == region && !sn.deleted {
				sn.deleted = true
				return "<return>true</return>", nil
			}
		}
		return "", &apiError{Code: "InvalidSnapshot.NotFound", Message: fmt.Sprintf("The snapshot '%s' does not exist.", id), Status: 400}
	}
	return "", &apiError{Code: "InvalidAction", Message: "awssim does not implement ec2:" + action, Status: 400}
}

func matchSnapshot(sn *snapshot, ids []string, filters map[string][]string, s *Sim, now time.Time) bool {
	if len(ids) > 0 {
		for _, id := range ids {
			if id == sn.id {
				return true
			}
		}
		return false
	}
	for name, vals := range filters {
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			v, ok := sn.tags[strings.TrimPrefix(name, "tag:")]
			if !ok {
				return false
			}
			have = []string{v}
		case name == "tag-key":
			for k := range sn.tags {
				have = append(have, k)
			}
		case name == "snapshot-id":
			have = []string{sn.id}
		case name == "volume-id":
			have = []string{sn.volumeID}
		case name == "status":
			st, _ := s.snapshotState(sn, now)
			have = []string{st}
		default:
			return false
		}
		ok := false
		for _, h := range have {
			for _, v := range vals {
				if h == v {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func tagSet(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<tagSet>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<item><key>%s</key><value>%s</value></item>", xmlText(k), xmlText(tags[k]))
	}
	b.WriteString("</tagSet>")
	return b.String()
}
