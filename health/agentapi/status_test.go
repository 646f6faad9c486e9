package agentapi

import (
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in      string
		state   string // "" for an error
		weight  int    // -1: none
		maxconn int    // -1: none
		note    string
	}{
		{"up", "up", -1, -1, ""},
		{"UP", "up", -1, -1, ""},
		{"ready", "up", -1, -1, ""},
		{"down", "down", -1, -1, ""},
		{"fail", "down", -1, -1, ""},
		{"stopped # power off", "down", -1, -1, "power off"},
		{"down#disk full", "down", -1, -1, "disk full"},
		{"drain", "drain", -1, -1, ""},
		{"maint", "drain", -1, -1, "maint"},
		{"maint # kernel update", "drain", -1, -1, "kernel update"},
		{"75%", "up", 75, -1, ""},
		{"0%", "drain", 0, -1, ""},
		{"up 75%", "up", 75, -1, ""},
		{"up,75%,maxconn:30", "up", 75, 30, ""},
		{"up\t50%", "up", 50, -1, ""},
		{"maxconn:30", "up", -1, 30, ""},
		{"up ready", "up", -1, -1, ""},
		{"up drain", "drain", -1, -1, ""},
		{"down ready", "down", -1, -1, ""},
		{"down 50%", "down", 50, -1, ""},
		{"up up", "up", -1, -1, ""},
		{"150%", "up", 150, -1, ""},
		// errors
		{"", "", 0, 0, ""},
		{"   ", "", 0, 0, ""},
		{"# only a note", "", 0, 0, ""},
		{"maybe", "", 0, 0, ""},
		{"up down", "", 0, 0, ""},
		{"ready drain", "", 0, 0, ""},
		{"-5%", "", 0, 0, ""},
		{"+5%", "", 0, 0, ""},
		{"-0%", "", 0, 0, ""},
		{"maxconn:-0", "", 0, 0, ""},
		{"maxconn:+3", "", 0, 0, ""},
		{"0075%", "up", 75, -1, ""},
		{"0000000000000000000075%", "up", 75, -1, ""},
		{"maxconn:2147483647", "up", -1, 2147483647, ""},
		{"maxconn:2147483648", "", 0, 0, ""},
		{"100000%", "up", 100000, -1, ""},
		{"100001%", "", 0, 0, ""},
		{"7.5%", "", 0, 0, ""},
		{"%", "", 0, 0, ""},
		{"50% 60%", "", 0, 0, ""},
		{"maxconn:", "", 0, 0, ""},
		{"maxconn:-1", "", 0, 0, ""},
		{"maxconn:x", "", 0, 0, ""},
		{"maxconn:99999999999", "", 0, 0, ""},
	}
	for _, tt := range tests {
		st, err := ParseStatus(tt.in)
		if tt.state == "" {
			if err == nil {
				t.Errorf("ParseStatus(%q) = %+v, want an error", tt.in, st)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseStatus(%q): %v", tt.in, err)
			continue
		}
		w, m := -1, -1
		if st.WeightPercent != nil {
			w = *st.WeightPercent
		}
		if st.MaxConn != nil {
			m = *st.MaxConn
		}
		if st.State != tt.state || w != tt.weight || m != tt.maxconn || st.Note != tt.note {
			t.Errorf("ParseStatus(%q) = %s weight %d maxconn %d note %q; want %s %d %d %q", tt.in, st.State, w, m, st.Note, tt.state, tt.weight, tt.maxconn, tt.note)
		}
	}
}

func TestReportRequest(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	tests := []struct {
		name string
		req  ReportRequest
		ok   bool
	}{
		{"defaults", ReportRequest{Status: "up"}, true},
		{"full", ReportRequest{Status: "up 75%", Load: f(0.3), Connections: i(12), Capacity: i(100), Message: "fine", TTL: "1h"}, true},
		{"weight twice, same", ReportRequest{Status: "75%", WeightPercent: i(75)}, true},
		{"weight twice, differing", ReportRequest{Status: "75%", WeightPercent: i(50)}, false},
		{"maxconn and capacity differing", ReportRequest{Status: "maxconn:5", Capacity: i(6)}, false},
		{"load 1.01", ReportRequest{Status: "up", Load: f(1.01)}, false},
		{"load -0.01", ReportRequest{Status: "up", Load: f(-0.01)}, false},
		{"negative connections", ReportRequest{Status: "up", Connections: i(-1)}, false},
		{"negative capacity", ReportRequest{Status: "up", Capacity: i(-1)}, false},
		{"ttl 0", ReportRequest{Status: "up", TTL: "0s"}, false},
		{"ttl negative", ReportRequest{Status: "up", TTL: "-5s"}, false},
		{"ttl over 1h", ReportRequest{Status: "up", TTL: "61m"}, false},
		{"ttl not a duration", ReportRequest{Status: "up", TTL: "30"}, false},
		{"no status", ReportRequest{}, false},
	}
	for _, tt := range tests {
		rep, err := tt.req.Report()
		if (err == nil) != tt.ok {
			t.Errorf("%s: %+v, %v", tt.name, rep, err)
		}
	}
	rep, err := (&ReportRequest{Status: "maint"}).Report()
	if err != nil || rep.Status != "drain" || rep.Message != "maint" || rep.TTL != DefaultTTL {
		t.Errorf("maint: %+v, %v", rep, err)
	}
}
