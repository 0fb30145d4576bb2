package queuedepth

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// result is one statement's result: its column names, as the server
// named them, and its rows of text values (nil for NULL).
type result struct {
	cols []string
	rows [][][]byte
}

// row is one row of a result, read by column name (the names sql.go
// gives each statement's columns).
type row struct {
	cols []string
	vals [][]byte
}

// each calls f with every row of r.
func (r result) each(f func(row) error) error {
	for _, v := range r.rows {
		if err := f(row{cols: r.cols, vals: v}); err != nil {
			return err
		}
	}
	return nil
}

// first is the result's first row; ok is false when it has none.
func (r result) first() (row, bool) {
	if len(r.rows) == 0 {
		return row{}, false
	}
	return row{cols: r.cols, vals: r.rows[0]}, true
}

// raw is the text of column col, nil for NULL or a column the statement
// does not have (sql_test.go checks every statement's columns).
func (r row) raw(col string) []byte {
	for i, c := range r.cols {
		if c == col {
			return r.vals[i]
		}
	}
	return nil
}

func (r row) null(col string) bool   { return r.raw(col) == nil }
func (r row) text(col string) string { return string(r.raw(col)) }
func (r row) bool(col string) bool   { return string(r.raw(col)) == "true" }
func (r row) float(col string) float64 {
	f, _ := strconv.ParseFloat(string(r.raw(col)), 64)
	return f
}

func (r row) int(col string) int64 {
	n, _ := strconv.ParseInt(string(r.raw(col)), 10, 64)
	return n
}

// columnNames are the names of a result's fields.
func columnNames(fds []pgconn.FieldDescription) []string {
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	return names
}

// readRows reads every row of rr, copying the values (rr reuses its
// buffers), and closes it.
func readRows(rr *pgconn.ResultReader) (result, error) {
	res := result{cols: columnNames(rr.FieldDescriptions())}
	for rr.NextRow() {
		vals := rr.Values()
		row := make([][]byte, len(vals))
		for j, v := range vals {
			if v != nil {
				row[j] = append([]byte{}, v...)
			}
		}
		res.rows = append(res.rows, row)
	}
	_, err := rr.Close()
	return res, err
}
