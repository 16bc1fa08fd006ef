// Renders templates with Go's real text/template, for the tests' differential check of the
// TypeScript evaluator (test/support/goTemplate.ts). Reads a JSON array of cases on stdin and
// writes a JSON array of {output} or {error} on stdout.
//
// The data types mirror what Grafana hands to its templates (annotation templates:
// pkg/services/ngalert/state/template; notification templates: grafana/alerting
// templates.ExtendedData); the functions are written here from their documented behaviour.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"text/template"
)

type value struct {
	Labels map[string]string
	Value  float64
}

type annotationData struct {
	Labels map[string]string
	Values map[string]value
	Value  string
}

type extendedAlert struct {
	Status       string
	Labels       map[string]string
	Annotations  map[string]string
	GeneratorURL string
	Fingerprint  string
	SilenceURL   string
	DashboardURL string
	PanelURL     string
	Values       map[string]float64
	ValueString  string
}

type extendedAlerts []extendedAlert

func (as extendedAlerts) Firing() []extendedAlert   { return as.with("firing") }
func (as extendedAlerts) Resolved() []extendedAlert { return as.with("resolved") }
func (as extendedAlerts) with(status string) []extendedAlert {
	out := []extendedAlert{}
	for _, a := range as {
		if a.Status == status {
			out = append(out, a)
		}
	}
	return out
}

type extendedData struct {
	Receiver          string
	Status            string
	Alerts            extendedAlerts
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	GroupKey          string
}

type valueIn struct {
	Value  float64           `json:"value"`
	Labels map[string]string `json:"labels"`
}

type alertIn struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	GeneratorURL string            `json:"generatorURL"`
	SilenceURL   string            `json:"silenceURL"`
	DashboardURL string            `json:"dashboardURL"`
	PanelURL     string            `json:"panelURL"`
}

type caseIn struct {
	Kind     string `json:"kind"` // "annotation" or "notification"
	Template string `json:"template"`
	Name     string `json:"name"`
	// annotation
	Labels map[string]string  `json:"labels"`
	Values map[string]valueIn `json:"values"`
	// notification
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []alertIn         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
}

type result struct {
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

func g4(v float64) string { return fmt.Sprintf("%.4g", v) }

var funcs = template.FuncMap{
	"humanize": func(v float64) string {
		if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return g4(v)
		}
		if math.Abs(v) >= 1 {
			prefix := ""
			for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
				if math.Abs(v) < 1000 {
					break
				}
				prefix = p
				v /= 1000
			}
			return g4(v) + prefix
		}
		prefix := ""
		for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
			if math.Abs(v) >= 1 {
				break
			}
			prefix = p
			v *= 1000
		}
		return g4(v) + prefix
	},
	"humanize1024": func(v float64) string {
		if math.Abs(v) <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
			return g4(v)
		}
		prefix := ""
		for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
			if math.Abs(v) < 1024 {
				break
			}
			prefix = p
			v /= 1024
		}
		return g4(v) + prefix
	},
	"humanizePercentage": func(v float64) string { return g4(v*100) + "%" },
	"toUpper":            strings.ToUpper,
	"match":              regexp.MatchString,
}

func render(c caseIn) (string, error) {
	var buf bytes.Buffer
	if c.Kind == "annotation" {
		text := "{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}" + c.Template
		tmpl, err := template.New("a").Option("missingkey=invalid").Funcs(funcs).Parse(text)
		if err != nil {
			return "", err
		}
		values := map[string]value{}
		for k, v := range c.Values {
			values[k] = value{Labels: v.Labels, Value: v.Value}
		}
		if err := tmpl.Execute(&buf, annotationData{Labels: c.Labels, Values: values}); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", "[no value]"), nil
	}
	tmpl, err := template.New("").Option("missingkey=invalid").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return "", err
	}
	alerts := extendedAlerts{}
	for _, a := range c.Alerts {
		alerts = append(alerts, extendedAlert{
			Status: a.Status, Labels: a.Labels, Annotations: a.Annotations, GeneratorURL: a.GeneratorURL,
			Fingerprint: "0000000000000000", SilenceURL: a.SilenceURL, DashboardURL: a.DashboardURL, PanelURL: a.PanelURL,
			Values: map[string]float64{},
		})
	}
	data := extendedData{
		Receiver: c.Receiver, Status: c.Status, Alerts: alerts, GroupLabels: c.GroupLabels,
		CommonLabels: c.CommonLabels, CommonAnnotations: c.CommonAnnotations, ExternalURL: c.ExternalURL, GroupKey: "{}:{}",
	}
	if err := tmpl.ExecuteTemplate(&buf, c.Name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func main() {
	var cases []caseIn
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	results := make([]result, 0, len(cases))
	for _, c := range cases {
		out, err := render(c)
		if err != nil {
			results = append(results, result{Error: err.Error()})
		} else {
			results = append(results, result{Output: out})
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
