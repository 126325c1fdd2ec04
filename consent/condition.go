package consent

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// Limits on condition programs. They are part of consensus: changing one
// changes which grants are accepted, so it needs a coordinated upgrade.
const (
	MaxExprBytes  = 1024  // longest condition source, in bytes
	MaxNesting    = 32    // deepest parse tree the parser accepts
	MaxCost       = 1_000 // estimated and runtime cost bound, in CEL cost units (~0.2 ms worst case)
	MaxFieldBytes = 256   // longest request string a condition may see
)

// ErrCondition is wrapped by every error from Compile.
var ErrCondition = errors.New("invalid condition")

// The variables a condition may use, declared as flat dotted names so that
// the checker rejects a misspelt field (requester.name) at grant time rather
// than failing at read time, as a map(string, dyn) declaration would.
const (
	varRequesterID   = "requester.id"
	varRequesterRole = "requester.role"
	varRequesterOrg  = "requester.org"
	varRecordCat     = "record.category"
	varRecordAuthor  = "record.author"
	varRequestPurp   = "request.purpose"
	varRequestTime   = "request.time"
)

var stringVars = []string{
	varRequesterID, varRequesterRole, varRequesterOrg,
	varRecordCat, varRecordAuthor, varRequestPurp,
}

// env is built once: building it is costly, and a cel.Env is safe for
// concurrent use. Only the standard library is enabled: no extension, so no
// function can read a clock, a random source or the environment.
var env = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable(varRequestTime, cel.TimestampType),
		cel.DefaultUTCTimeZone(true),
		cel.ParserRecursionLimit(MaxNesting),
		cel.ParserExpressionSizeLimit(MaxExprBytes),
	}
	for _, v := range stringVars {
		opts = append(opts, cel.Variable(v, cel.StringType))
	}
	return cel.NewEnv(opts...)
})

// Program is a compiled, checked condition. It is immutable and safe for
// concurrent use, so callers may cache one per consent.
type Program struct {
	src string
	prg cel.Program
}

// String returns the condition's source.
func (p *Program) String() string { return p.src }

// Compile parses and type-checks a condition, proves that it yields a bool,
// that it cannot behave differently on different nodes, and that its
// worst-case cost is under MaxCost. Errors wrap ErrCondition.
func Compile(expr string) (*Program, error) {
	if err := checkSource(expr); err != nil {
		return nil, err
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("%w: environment: %w", ErrCondition, err)
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%w: %w%s", ErrCondition, iss.Err(), hint(iss.Err()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("%w: result must be bool, not %s", ErrCondition, ast.OutputType())
	}
	if err := checkDeterministic(ast.NativeRep()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCondition, err)
	}
	if err := checkCost(e, ast); err != nil {
		return nil, err
	}
	prg, err := e.Program(ast, cel.CostLimit(MaxCost), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCondition, err)
	}
	return &Program{src: expr, prg: prg}, nil
}

// hint names the declared variables when the checker found an undeclared
// one: the bare message ("undeclared reference to 'requester'") does not say
// that only the listed fields exist.
func hint(err error) string {
	if !strings.Contains(err.Error(), "undeclared reference") {
		return ""
	}
	return "\n(variables: " + strings.Join(append(slices.Clone(stringVars), varRequestTime), ", ") + ")"
}

// checkSource rejects what the parser should never have to see.
func checkSource(expr string) error {
	switch {
	case expr == "":
		return fmt.Errorf("%w: empty expression", ErrCondition)
	case len(expr) > MaxExprBytes:
		return fmt.Errorf("%w: %d bytes, longer than the limit of %d", ErrCondition, len(expr), MaxExprBytes)
	case !utf8.ValidString(expr):
		return fmt.Errorf("%w: not valid UTF-8", ErrCondition)
	}
	return nil
}

// tzOverloads are the timestamp accessors that take a time-zone name. They
// load zone rules from the host's tz database, whose version differs between
// machines, so their answers could differ between nodes.
var tzOverloads = []string{
	overloads.TimestampToYearWithTz, overloads.TimestampToMonthWithTz,
	overloads.TimestampToDayOfYearWithTz, overloads.TimestampToDayOfMonthZeroBasedWithTz,
	overloads.TimestampToDayOfMonthOneBasedWithTz, overloads.TimestampToDayOfWeekWithTz,
	overloads.TimestampToHoursWithTz, overloads.TimestampToMinutesWithTz,
	overloads.TimestampToSecondsWithTz, overloads.TimestampToMillisecondsWithTz,
}

// checkDeterministic rejects the few standard CEL features whose results may
// vary by node: time-zone names, doubles (the package allows no floating
// point), and comprehensions over maps, whose iteration order is Go's random
// map order (e.g. {'a':1,'b':2}.map(k, k)[0]). Maps are walked in sorted key
// order so the reported error is itself deterministic.
func checkDeterministic(a *celast.AST) error {
	tm := a.TypeMap()
	for _, id := range slices.Sorted(maps.Keys(tm)) {
		if tm[id].Kind() == types.DoubleKind {
			return errors.New("floating-point values are not allowed")
		}
	}
	rm := a.ReferenceMap()
	for _, id := range slices.Sorted(maps.Keys(rm)) {
		for _, o := range rm[id].OverloadIDs {
			if slices.Contains(tzOverloads, o) {
				return errors.New("time-zone arguments are not allowed; times are UTC")
			}
		}
	}
	var err error
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if err == nil && e.Kind() == celast.ComprehensionKind &&
			a.GetType(e.AsComprehension().IterRange().ID()).Kind() != types.ListKind {
			err = errors.New("macros may range over lists only")
		}
	}))
	return err
}

// checkCost rejects a condition whose worst case, with every request string
// at MaxFieldBytes, exceeds MaxCost. The runtime CostLimit is the backstop.
func checkCost(e *cel.Env, ast *cel.Ast) error {
	est, err := e.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return fmt.Errorf("%w: estimating cost: %w", ErrCondition, err)
	}
	if est.Max > MaxCost {
		return fmt.Errorf("%w: worst-case cost %d exceeds the limit of %d", ErrCondition, est.Max, MaxCost)
	}
	return nil
}

// sizeEstimator tells the cost checker how long request strings can be;
// Eval enforces the same bound, so the estimate is sound.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if p := n.Path(); len(p) == 1 && slices.Contains(stringVars, p[0]) {
		return &checker.SizeEstimate{Min: 0, Max: MaxFieldBytes}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Eval runs the condition on req. Any error, a cost overrun included, comes
// with false: a condition that cannot be decided denies.
func (p *Program) Eval(req Request) (bool, error) {
	if p == nil || p.prg == nil {
		return false, errors.New("consent: nil condition program")
	}
	act := activation{req: &req}
	if err := act.check(); err != nil {
		return false, err
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return false, fmt.Errorf("consent: condition: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("consent: condition gave %s, not bool", out.Type())
	}
	return b, nil
}

// activation serves the variables straight from the request, with no map
// to build or iterate on each evaluation.
type activation struct{ req *Request }

func (a activation) ResolveName(name string) (any, bool) {
	r := a.req
	switch name {
	case varRequesterID:
		return r.Requester.ID, true
	case varRequesterRole:
		return r.Requester.Role, true
	case varRequesterOrg:
		return r.Requester.Org, true
	case varRecordCat:
		return r.Category, true
	case varRecordAuthor:
		return r.Author, true
	case varRequestPurp:
		return r.Purpose, true
	case varRequestTime:
		return types.Timestamp{Time: time.Unix(0, r.Time).UTC()}, true
	}
	return nil, false
}

func (activation) Parent() interpreter.Activation { return nil }

// check holds request strings to the size the cost estimate assumed.
func (a activation) check() error {
	r := a.req
	for _, s := range [...]string{r.Requester.ID, r.Requester.Role, r.Requester.Org, r.Category, r.Author, r.Purpose} {
		if len(s) > MaxFieldBytes {
			return fmt.Errorf("consent: a request field is longer than %d bytes", MaxFieldBytes)
		}
	}
	return nil
}
