package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Formats lists the output formats.
var Formats = []string{FormatTable, FormatJSON, FormatCSV}

// ValidFormat reports whether f is one of Formats.
func ValidFormat(f string) bool {
	for _, x := range Formats {
		if f == x {
			return true
		}
	}
	return false
}

// Write renders an audit in format.
func Write(w io.Writer, format string, a *Audit) error {
	switch format {
	case FormatTable:
		return WriteTable(w, a)
	case FormatJSON:
		return WriteJSON(w, a.Rows)
	case FormatCSV:
		return WriteCSV(w, a.Rows)
	}
	return fmt.Errorf("audit: unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

// Summary is the audit's one-line heading.
func (a *Audit) Summary() string {
	var twilio, reactor int
	for _, r := range a.Rows {
		if r.Source == SourceReactor {
			reactor++
		} else {
			twilio++
		}
	}
	var b strings.Builder
	switch {
	case a.Conversation != "":
		b.WriteString("conversation " + a.Conversation)
	default:
		b.WriteString("task " + a.Task + " (no conversation known)")
	}
	fmt.Fprintf(&b, ": %d events (%d from Twilio, %d from the reactors)", len(a.Rows), twilio, reactor)
	if len(a.Tasks) > 0 {
		b.WriteString("; tasks " + strings.Join(a.Tasks, ", "))
	}
	return b.String()
}

// WriteTable renders the rows as aligned columns for a terminal: time
// (RFC 3339, ms, UTC), source, type, task, detail. A task's audit marks
// its rows with "*" in a first column.
func WriteTable(w io.Writer, a *Audit) error {
	if _, err := fmt.Fprintln(w, a.Summary()); err != nil {
		return err
	}
	if a.Task != "" {
		if _, err := fmt.Fprintf(w, "rows of task %s are marked *\n", a.Task); err != nil {
			return err
		}
	}
	if a.Scanned > 0 {
		if _, err := fmt.Fprintf(w, "(found by reading %d events of $all)\n", a.Scanned); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mark := func(r *Row) string {
		if a.Task == "" {
			return ""
		}
		if r != nil && r.Marked {
			return "*\t"
		}
		return " \t"
	}
	fmt.Fprintf(tw, "%sTIME\tSOURCE\tTYPE\tTASK\tDETAIL\n", mark(nil))
	for i := range a.Rows {
		r := &a.Rows[i]
		task := r.Task
		if task == "" {
			task = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", mark(r), stamp(r.At), r.Source, clean(r.Type), clean(task), clean(r.Detail))
	}
	return tw.Flush()
}

// WriteJSON renders the rows as a JSON array (field names as in Row).
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rows)
}

// CSVHeader is the CSV output's first row.
var CSVHeader = []string{"at", "source", "stream", "revision", "position", "event_id", "type", "ce_type", "task", "new_task", "trigger_of", "marked", "detail"}

// WriteCSV renders the rows as CSV (RFC 4180) with a header row.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{
			stamp(r.At), r.Source, r.Stream, strconv.FormatUint(r.Revision, 10), strconv.FormatUint(r.Position, 10),
			r.EventID, r.Type, r.CEType, r.Task, r.NewTask, r.Trigger, strconv.FormatBool(r.Marked), r.Detail,
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
