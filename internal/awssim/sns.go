package awssim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SNSMessage is one message SNS Publish accepted and delivered.
type SNSMessage struct {
	TopicArn, Subject, Message, MessageID string
	GroupID, DeduplicationID              string
	Attributes                            map[string]string
	At                                    time.Time
}

// Published returns every message delivered, in order (a FIFO topic's
// deduplicated repeats are not).
func (s *Sim) Published() []SNSMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SNSMessage(nil), s.safety.messages...)
}

// serveSNS answers SNS's awsQuery Publish. A topic exists when its ARN is
// in the caller's account and region. FIFO topics (.fifo) require a group
// id and drop a repeated deduplication id for 5 minutes, as SNS does.
func (s *Sim) serveSNS(w http.ResponseWriter, form url.Values, account, region string) {
	action := form.Get("Action")
	err, drop := s.preflight("sns:" + action)
	w.Header().Set("Content-Type", "text/xml")
	if err == nil && action != "Publish" {
		err = &apiError{Code: "InvalidAction", Message: "awssim does not implement sns:" + action, Status: 400}
	}
	var id string
	if err == nil {
		id, err = s.publish(form, account, region)
	}
	if drop { // the call took effect; its answer is lost
		dropConnection(w)
		return
	}
	if err != nil {
		ae := err.(*apiError)
		if ae.Code == "ThrottlingException" {
			ae = &apiError{Code: "Throttling", Message: "Rate exceeded", Status: 400}
		}
		writeQueryError(w, ae)
		return
	}
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>%s</MessageId></PublishResult><ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata></PublishResponse>`, id)
}

func (s *Sim) publish(form url.Values, account, region string) (string, error) {
	topic := form.Get("TopicArn")
	parts := strings.Split(topic, ":")
	if len(parts) != 6 || parts[2] != "sns" {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: TopicArn", Status: 400}
	}
	if parts[3] != region || parts[4] != account {
		return "", &apiError{Code: "NotFound", Message: "Topic does not exist", Status: 404}
	}
	msg := form.Get("Message")
	if msg == "" {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: Message", Status: 400}
	}
	if len(msg) > 256*1024 {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: Message too long", Status: 400}
	}
	if subj := form.Get("Subject"); len(subj) > 100 || strings.ContainsAny(subj, "\r\n") {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: Subject", Status: 400}
	}
	m := SNSMessage{TopicArn: topic, Subject: form.Get("Subject"), Message: msg, GroupID: form.Get("MessageGroupId"),
		DeduplicationID: form.Get("MessageDeduplicationId"), Attributes: map[string]string{}}
	for i := 1; ; i++ {
		p := fmt.Sprintf("MessageAttributes.entry.%d.", i)
		name, ok := form[p+"Name"]
		if !ok {
			break
		}
		m.Attributes[name[0]] = form.Get(p + "Value.StringValue")
	}
	fifo := strings.HasSuffix(topic, ".fifo")
	if fifo && m.GroupID == "" {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: The MessageGroupId parameter is required for FIFO topics", Status: 400}
	}
	if !fifo && m.DeduplicationID != "" {
		return "", &apiError{Code: "InvalidParameter", Message: "Invalid parameter: The request includes MessageDeduplicationId parameter that is not valid for this topic type", Status: 400}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if fifo {
		for _, old := range s.safety.messages {
			if old.TopicArn == topic && old.DeduplicationID == m.DeduplicationID && now.Sub(old.At) < 5*time.Minute {
				return old.MessageID, nil
			}
		}
	}
	s.safety.nextMsg++
	m.MessageID = fmt.Sprintf("00000000-sns0-4000-8000-%012x", s.safety.nextMsg)
	m.At = now
	s.safety.messages = append(s.safety.messages, m)
	return m.MessageID, nil
}
