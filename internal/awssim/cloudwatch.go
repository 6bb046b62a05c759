package awssim

import (
	"net/http"
	"strings"
	"time"

	smithycbor "github.com/aws/smithy-go/encoding/cbor"
)

// Metric is one datum CloudWatch PutMetricData received.
type Metric struct {
	Account, Region, Namespace, Name string
	Dimensions                       map[string]string
	Value                            float64
	Unit                             string
	Timestamp                        time.Time
}

// Metrics returns every datum received, in order.
func (s *Sim) Metrics() []Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Metric(nil), s.metrics...)
}

// serveCloudWatch answers CloudWatch's Smithy RPC v2 CBOR protocol (what the
// pinned SDK speaks): POST /service/GraniteServiceVersion20100801/operation/<Op>.
func (s *Sim) serveCloudWatch(w http.ResponseWriter, op string, body []byte, account, region string) {
	err, drop := s.preflight("cloudwatch:" + op)
	if drop {
		dropConnection(w)
		return
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	fail := func(e *apiError) {
		w.WriteHeader(e.Status)
		_, _ = w.Write(smithycbor.Encode(smithycbor.Map{"__type": smithycbor.String(e.Code), "message": smithycbor.String(e.Message)}))
	}
	if err != nil {
		fail(err.(*apiError))
		return
	}
	if op == "DescribeAlarms" { // alarms.go
		in, _ := smithycbor.Decode(body)
		m, _ := in.(smithycbor.Map)
		if out, e := s.describeAlarms(m, account, region); e != nil {
			fail(e)
		} else {
			_, _ = w.Write(smithycbor.Encode(out))
		}
		return
	}
	if op != "PutMetricData" {
		fail(&apiError{Code: "UnknownOperationException", Message: "awssim does not implement CloudWatch " + op, Status: 400})
		return
	}
	v, derr := smithycbor.Decode(body)
	in, ok := v.(smithycbor.Map)
	if derr != nil || !ok {
		fail(&apiError{Code: "SerializationException", Message: "body is not a CBOR map", Status: 400})
		return
	}
	ns, _ := in["Namespace"].(smithycbor.String)
	data, _ := in["MetricData"].(smithycbor.List)
	switch {
	case ns == "" || strings.HasPrefix(string(ns), "AWS/"):
		fail(&apiError{Code: "InvalidParameterValue", Message: "The value AWS/ for parameter Namespace is invalid.", Status: 400})
		return
	case len(data) == 0 || len(data) > 1000:
		fail(&apiError{Code: "InvalidParameterValue", Message: "The collection MetricData must not be empty and must not have more than 1000 entries.", Status: 400})
		return
	}
	var got []Metric
	for _, d := range data {
		m, _ := d.(smithycbor.Map)
		name, _ := m["MetricName"].(smithycbor.String)
		met := Metric{Account: account, Region: region, Namespace: string(ns), Name: string(name), Dimensions: map[string]string{}}
		if u, ok := m["Unit"].(smithycbor.String); ok {
			met.Unit = string(u)
		}
		switch val := m["Value"].(type) {
		case smithycbor.Float64:
			met.Value = float64(val)
		case smithycbor.Float32:
			met.Value = float64(val)
		case smithycbor.Uint:
			met.Value = float64(val)
		}
		if tag, ok := m["Timestamp"].(*smithycbor.Tag); ok {
			switch t := tag.Value.(type) {
			case smithycbor.Float64:
				met.Timestamp = time.UnixMilli(int64(float64(t) * 1000)).UTC()
			case smithycbor.Uint:
				met.Timestamp = time.Unix(int64(t), 0).UTC()
			}
		}
		dims, _ := m["Dimensions"].(smithycbor.List)
		if len(dims) > 30 {
			fail(&apiError{Code: "InvalidParameterValue", Message: "at most 30 dimensions per metric", Status: 400})
			return
		}
		for _, dd := range dims {
			dm, _ := dd.(smithycbor.Map)
			k, _ := dm["Name"].(smithycbor.String)
			val, _ := dm["Value"].(smithycbor.String)
			met.Dimensions[string(k)] = string(val)
		}
		got = append(got, met)
	}
	s.mu.Lock()
	s.metrics = append(s.metrics, got...)
	s.mu.Unlock()
	_, _ = w.Write(smithycbor.Encode(smithycbor.Map{}))
}
