package consent

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestCompileRejects(t *testing.T) {
	deep := strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40)
	nested := `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, ` +
		`[1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))`
	cases := []struct{ name, expr, want string }{
		{"empty", "", "empty"},
		{"non-bool int", "1 + 1", "result must be bool, not int"},
		{"non-bool string", "requester.id", "result must be bool, not string"},
		{"dyn result", "dyn(true)", "result must be bool"},
		{"unknown variable", `patient.name == "x"`, "undeclared reference"},
		{"unknown field", `requester.name == "x"`, "variables: requester.id"},
		{"bare object", `requester == "x"`, "undeclared reference"},
		{"type mismatch", `request.time == "2020"`, "no matching overload"},
		{"syntax error", `requester.role ==`, "Syntax error"},
		{"too long", `requester.id == "` + strings.Repeat("x", MaxExprBytes) + `"`, "longer than the limit"},
		{"too deep", deep, "recursion"},
		{"too costly", nested, "exceeds the limit"},
		{"costly regex", strings.Repeat(`record.author.matches("a.*b.*c.*d.*e.*f") && `, 20) + "true", "exceeds the limit"},
		{"time zone name", `request.time.getHours("America/New_York") > 8`, "time-zone"},
		{"time zone offset", `request.time.getSeconds("+01:00") > 8`, "time-zone"},
		{"float", `size(requester.id) < int(2.5)`, "floating-point"},
		{"map comprehension", `{"a": 1, "b": 2}.map(k, k)[0] == "a"`, "range over lists"},
		{"dyn comprehension", `dyn({"a": 1}).exists(k, k == "a")`, "range over lists"},
		{"invalid utf8", "requester.id == \"\xff\"", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.expr)
			if p != nil || !errors.Is(err, ErrCondition) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile(%q) = %v, %v; want ErrCondition containing %q", tc.expr, p, err, tc.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, expr := range []string{
		`requester.role == "physician"`,
		`requester.role in ["physician", "nurse"] && request.purpose == "treatment"`,
		`record.category != "imaging" || record.author == requester.id`,
		`requester.org.startsWith("hosp-") && record.author.matches("^[a-z0-9]+$")`,
		`request.time >= timestamp("2025-01-01T00:00:00Z") && request.time.getHours() < 18`,
		`request.time - timestamp("2025-01-01T00:00:00Z") < duration("8760h")`,
		`[1, 2, 3].all(x, [1, 2, 3].exists(y, x * y > 0))`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", expr, err)
			continue
		}
		if p.String() != expr {
			t.Errorf("String() = %q", p.String())
		}
		if _, err := p.Eval(ask(nil)); err != nil {
			t.Errorf("Eval(%q): %v", expr, err)
		}
	}
}

func TestEvalDeniesOnBadInput(t *testing.T) {
	p, err := Compile(`requester.id != ""`)
	if err != nil {
		t.Fatal(err)
	}
	long := ask(func(r *Request) { r.Author = strings.Repeat("a", MaxFieldBytes+1) })
	if ok, err := p.Eval(long); ok || err == nil {
		t.Fatalf("oversized field: %v %v", ok, err)
	}
	var nilProg *Program
	if ok, err := nilProg.Eval(ask(nil)); ok || err == nil {
		t.Fatalf("nil program: %v %v", ok, err)
	}
	ok, err := p.Eval(ask(func(r *Request) { r.Time = -1 << 63 }))
	if !ok || err != nil {
		t.Fatalf("extreme time: %v %v", ok, err)
	}
}

// TestEvalConcurrent shares one program between goroutines; run with -race.
func TestEvalConcurrent(t *testing.T) {
	p, err := Compile(`requester.role == "physician" && request.time.getHours() >= 0`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			role := Roles[i%len(Roles)]
			for range 200 {
				ok, err := p.Eval(ask(func(r *Request) { r.Requester.Role = role }))
				if err != nil || ok != (role == "physician") {
					t.Errorf("role %s: %v %v", role, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`requester.role == "physician"`, `1 + 1`, `requester.id.matches("(a+)+$")`,
		`request.time.getHours() > 8`, `[1,2].all(x, x > 0)`, `{"a": 1}.exists(k, k == "a")`,
		`size(record.author) > 3 ? record.category == "imaging" : false`, `"a" * 2`,
		`request.time + duration("1h") > timestamp("2020-01-01T00:00:00Z")`, `int(requester.id) / 0 == 1`,
	} {
		f.Add(s)
	}
	req := ask(nil)
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile(expr)
		if err != nil {
			if _, err2 := Compile(expr); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("nondeterministic compile error: %v / %v", err, err2)
			}
			return
		}
		ok1, err1 := p.Eval(req)
		ok2, err2 := p.Eval(req)
		if ok1 != ok2 || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("nondeterministic eval of %q: %v %v / %v %v", expr, ok1, err1, ok2, err2)
		}
		if err1 != nil && ok1 {
			t.Fatalf("allowed despite error: %v", err1)
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	expr := `requester.role in ["physician", "nurse"] && request.purpose == "treatment" && ` +
		`request.time < timestamp("2030-01-01T00:00:00Z")`
	for b.Loop() {
		if _, err := Compile(expr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate is a patient with ten consents; the matching one, last
// by ID, carries a condition whose compiled program comes from a cache.
func BenchmarkEvaluate(b *testing.B) {
	var consents []Consent
	for i := range 9 {
		consents = append(consents, grant(func(c *Consent) { c.ID, c.Grantee = fmt.Sprintf("c%d", i), fmt.Sprintf("m%d", i+10) }))
	}
	consents = append(consents, grant(func(c *Consent) {
		c.ID, c.Condition = "c9", `requester.role == "physician" && request.time.getHours() < 24`
	}))
	cache := map[string]*Program{}
	for _, c := range consents {
		if c.Condition != "" {
			p, err := Compile(c.Condition)
			if err != nil {
				b.Fatal(err)
			}
			cache[c.ID] = p
		}
	}
	compile := func(c Consent) (*Program, error) { return cache[c.ID], nil }
	req := ask(nil)
	for b.Loop() {
		d, err := Evaluate(consents, req, compile)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}
