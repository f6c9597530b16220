package sync

import (
	"strings"

	"github.com/syncplane/syncplane/tenant"
)

// snapshotPayloadExpr is the SQL text expression of a row's wire payload for
// the table aliased alias, byte for byte what wireExpr renders (and the
// capture trigger stores) for tables of up to 50 columns: '{"c" : v, ...}'
// with every value as json_build_object renders it. It is built from
// concatenation and per-type casts because json_build_object looks up every
// argument's type and output function on every call, which makes it the
// largest cost of freezing a big snapshot; this form renders a row about 1.5
// times faster. Wider tables (and names that would need JSON escaping) keep
// wireExpr.
func (t *catTable) snapshotPayloadExpr(alias string) string {
	if len(t.colList) > 50 {
		return t.wireExpr(alias) + `::text`
	}
	for _, c := range t.colList {
		if !plainName(c) {
			return t.wireExpr(alias) + `::text`
		}
	}
	parts := make([]string, 0, 2*len(t.colList)+1)
	for i, c := range t.colList {
		sep := `, `
		if i == 0 {
			sep = `{`
		}
		parts = append(parts, `'`+sep+`"`+c+`" : '`)
		v := alias + `.` + col(c)
		var e string
		switch t.cols[c] {
		case tenant.ColumnUUID:
			e = `'"' || ` + v + `::text || '"'` // canonical form, nothing to escape
		case tenant.ColumnInteger, tenant.ColumnJSON:
			e = v + `::text` // int8out and jsonb_out are what json_build_object emits
		case tenant.ColumnBlob:
			e = `'"' || translate(encode(` + v + `, 'base64'), E'\n', '') || '"'`
		default: // text, timestamp (text), real: escaping, NaN and Infinity quoted
			e = `to_json(` + v + `)::text`
		}
		parts = append(parts, `coalesce(`+e+`, 'null')`)
	}
	parts = append(parts, `'}'`)
	return `(` + strings.Join(parts, ` || `) + `)`
}

// plainName reports whether a column name is written into JSON and SQL
// literals unchanged ([a-z0-9_], as the schema validator requires).
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}
