//! Values and expressions of the SQL admin: `sqlparser`'s AST lowered once against a table's
//! columns (unknown names fail here, as MySQL's 1054), then evaluated row by row.

use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};

/// A cell: ProxySQL's admin tables hold integers, text and NULL only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.into()))
    }

    /// The wire text of the value (`None` for NULL).
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(i.to_string()),
            Value::Text(s) => Some(s.clone()),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    fn truthy(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            v => Some(v.as_int().unwrap_or(0) != 0),
        }
    }

    /// SQL comparison: numerically when both sides are numbers, else as text (ASCII case
    /// folded, as SQLite's NOCASE columns and MySQL's default collation compare); NULL: unknown.
    pub fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (a, b) => match (a.as_int(), b.as_int(), a, b) {
                (Some(x), Some(y), Value::Int(_), _) | (Some(x), Some(y), _, Value::Int(_)) => {
                    Some(x.cmp(&y))
                }
                _ => {
                    let (x, y) = (a.render().unwrap_or_default(), b.render().unwrap_or_default());
                    Some(x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()))
                }
            },
        }
    }
}

/// A lowered expression.
#[derive(Debug, Clone)]
pub enum E {
    Column(usize),
    Lit(Value),
    Not(Box<E>),
    Neg(Box<E>),
    IsNull(Box<E>, bool),
    In(Box<E>, Vec<E>, bool),
    Like(Box<E>, Box<E>, bool),
    Between(Box<E>, Box<E>, Box<E>, bool),
    Bin(Box<E>, BinaryOperator, Box<E>),
    /// `COUNT(*)`: only as a whole projection item.
    CountStar,
}

/// What names mean while lowering: the table's columns and the session's `@@variables`.
pub struct Scope<'a> {
    pub columns: &'a [&'a str],
    pub variable: &'a dyn Fn(&str) -> Option<Value>,
    pub function: &'a dyn Fn(&str) -> Option<Value>,
}

type Lowered = Result<E, String>;

impl Scope<'_> {
    pub fn column(&self, name: &str) -> Result<usize, String> {
        let name = name.trim_matches('`');
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("Unknown column '{name}'"))
    }

    pub fn lower(&self, e: &Expr) -> Lowered {
        let b = |e: &Expr| self.lower(e).map(Box::new);
        Ok(match e {
            Expr::Identifier(id) => self.name(&id.value, id.quote_style)?,
            Expr::CompoundIdentifier(ids) => match ids.last() {
                Some(id) => self.name(&id.value, id.quote_style)?,
                None => return Err("empty name".into()),
            },
            Expr::Value(v) => E::Lit(literal(&v.value)?),
            Expr::Nested(inner) => return self.lower(inner),
            Expr::UnaryOp { op: UnaryOperator::Not, expr } => E::Not(b(expr)?),
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => E::Neg(b(expr)?),
            Expr::UnaryOp { op: UnaryOperator::Plus, expr } => return self.lower(expr),
            Expr::IsNull(x) => E::IsNull(b(x)?, false),
            Expr::IsNotNull(x) => E::IsNull(b(x)?, true),
            Expr::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                E::In(b(expr)?, list.iter().map(|x| self.lower(x)).collect::<Result<_, _>>()?, *negated)
            }
            Expr::Like { negated, expr, pattern, escape_char: None, any: false } => {
                E::Like(b(expr)?, b(pattern)?, *negated)
            }
            Expr::Between { expr, negated, low, high } => E::Between(b(expr)?, b(low)?, b(high)?, *negated),
            Expr::BinaryOp { left, op, right } => E::Bin(b(left)?, op.clone(), b(right)?),
            Expr::Function(f) => self.function(f)?,
            other => return Err(format!("not supported by the rwproxy admin: {other}")),
        })
    }

    fn name(&self, name: &str, quote: Option<char>) -> Lowered {
        if quote == Some('"') || quote == Some('\'') {
            return Ok(E::Lit(Value::text(name)));
        }
        if let Some(var) = name.strip_prefix("@@") {
            let var = var.rsplit('.').next().unwrap_or(var);
            return (self.variable)(&var.to_ascii_lowercase())
                .map(E::Lit)
                .ok_or_else(|| format!("Unknown system variable '{var}'"));
        }
        self.column(name).map(E::Column)
    }

    fn function(&self, f: &ast::Function) -> Lowered {
        let name = f.name.to_string().to_ascii_lowercase();
        let star = matches!(&f.args, ast::FunctionArguments::List(l)
            if matches!(l.args.as_slice(), [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)]));
        if name == "count" && star {
            return Ok(E::CountStar);
        }
        let no_args = match &f.args {
            ast::FunctionArguments::None => true,
            ast::FunctionArguments::List(l) => l.args.is_empty(),
            ast::FunctionArguments::Subquery(_) => false,
        };
        match (self.function)(&name) {
            Some(v) if no_args => Ok(E::Lit(v)),
            _ => Err(format!("FUNCTION {name} does not exist in the rwproxy admin")),
        }
    }
}

fn literal(v: &ast::Value) -> Result<Value, String> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Text(n.clone()),
        },
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Value::Text(s.clone()),
        ast::Value::Boolean(b) => Value::Int(i64::from(*b)),
        ast::Value::Null => Value::Null,
        other => return Err(format!("literal not supported by the rwproxy admin: {other}")),
    })
}

impl E {
    pub fn eval(&self, row: &[Value]) -> Result<Value, String> {
        use std::cmp::Ordering::*;
        let bool_value = |b: Option<bool>| b.map_or(Value::Null, |b| Value::Int(i64::from(b)));
        Ok(match self {
            E::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            E::Lit(v) => v.clone(),
            E::Not(x) => bool_value(x.eval(row)?.truthy().map(|b| !b)),
            E::Neg(x) => x.eval(row)?.as_int().map_or(Value::Null, |i| Value::Int(-i)),
            E::IsNull(x, negated) => Value::Int(i64::from((x.eval(row)? == Value::Null) != *negated)),
            E::In(x, list, negated) => {
                let v = x.eval(row)?;
                let mut found = false;
                for item in list {
                    found |= v.compare(&item.eval(row)?) == Some(Equal);
                }
                bool_value((v != Value::Null).then_some(found != *negated))
            }
            E::Like(x, p, negated) => match (x.eval(row)?.render(), p.eval(row)?.render()) {
                (Some(s), Some(p)) => Value::Int(i64::from(like(&s, &p) != *negated)),
                _ => Value::Null,
            },
            E::Between(x, lo, hi, negated) => {
                let v = x.eval(row)?;
                let (a, b) = (v.compare(&lo.eval(row)?), v.compare(&hi.eval(row)?));
                bool_value(a.zip(b).map(|(a, b)| (a != Less && b != Greater) != *negated))
            }
            E::Bin(l, op, r) => binary(l.eval(row)?, op, r.eval(row)?)?,
            E::CountStar => return Err("COUNT(*) is only supported as a whole column".into()),
        })
    }

    /// Whether a `WHERE` condition holds (NULL does not).
    pub fn holds(&self, row: &[Value]) -> Result<bool, String> {
        Ok(self.eval(row)?.truthy().unwrap_or(false))
    }
}

fn binary(l: Value, op: &BinaryOperator, r: Value) -> Result<Value, String> {
    use std::cmp::Ordering::*;
    let cmp = l.compare(&r);
    let bool_value = |b: Option<bool>| b.map_or(Value::Null, |b| Value::Int(i64::from(b)));
    let arith = |f: fn(i64, i64) -> Option<i64>| match (l.as_int(), r.as_int()) {
        (Some(a), Some(b)) => f(a, b).map_or(Value::Null, Value::Int),
        _ => Value::Null,
    };
    Ok(match op {
        BinaryOperator::Eq => bool_value(cmp.map(|o| o == Equal)),
        BinaryOperator::NotEq => bool_value(cmp.map(|o| o != Equal)),
        BinaryOperator::Lt => bool_value(cmp.map(|o| o == Less)),
        BinaryOperator::LtEq => bool_value(cmp.map(|o| o != Greater)),
        BinaryOperator::Gt => bool_value(cmp.map(|o| o == Greater)),
        BinaryOperator::GtEq => bool_value(cmp.map(|o| o != Less)),
        BinaryOperator::Spaceship => Value::Int(i64::from(l == r || cmp == Some(Equal))),
        BinaryOperator::And => match (l.truthy(), r.truthy()) {
            (Some(false), _) | (_, Some(false)) => Value::Int(0),
            (Some(true), Some(true)) => Value::Int(1),
            _ => Value::Null,
        },
        BinaryOperator::Or => match (l.truthy(), r.truthy()) {
            (Some(true), _) | (_, Some(true)) => Value::Int(1),
            (Some(false), Some(false)) => Value::Int(0),
            _ => Value::Null,
        },
        BinaryOperator::Plus => arith(i64::checked_add),
        BinaryOperator::Minus => arith(i64::checked_sub),
        BinaryOperator::Multiply => arith(i64::checked_mul),
        BinaryOperator::StringConcat => match (l.render(), r.render()) {
            (Some(a), Some(b)) => Value::Text(a + &b),
            _ => Value::Null,
        },
        other => return Err(format!("operator {other} is not supported by the rwproxy admin")),
    })
}

/// SQL `LIKE`: `%` any run, `_` one character, ASCII case folded.
fn like(s: &str, p: &str) -> bool {
    fn go(s: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(&s[i..], rest)),
            Some(('_', rest)) => !s.is_empty() && go(&s[1..], rest),
            Some((c, rest)) => s.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(&s[1..], rest),
        }
    }
    let (s, p): (Vec<char>, Vec<char>) = (s.chars().collect(), p.chars().collect());
    // Bounded: admin patterns are short; a pathological one is cut rather than left to explode.
    p.len() <= 256 && s.len() <= 4096 && go(&s, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("127.0.0.1", "127.%"));
        assert!(!like("ONLINE", "OFF%"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
    }

    #[test]
    fn comparisons_are_numeric_for_numbers_and_caseless_for_text() {
        use std::cmp::Ordering::*;
        assert_eq!(Value::Int(10).compare(&Value::text("9")), Some(Greater));
        assert_eq!(Value::text("ONLINE").compare(&Value::text("online")), Some(Equal));
        assert_eq!(Value::Null.compare(&Value::Int(1)), None);
    }
}
