//! The built-in demo backend: a small in-memory customer database seeded for the seed's call
//! (customer `C-1042` on Standard, charged $49 on January 15 for the monthly renewal, who
//! upgrades to Pro), and the three demo tools over it: `check_billing`, `get_upgrade_options`
//! and `record_upgrade`.
//!
//! Sans-IO: no clock, no randomness. Confirmation ids are a per-database sequence. Every
//! failure (unknown tool, arguments that are not what the tool needs, unknown customer or plan,
//! a plan change that is not an upgrade) is a [`ToolError`] whose text is meant for the model,
//! as the function result; nothing here panics on what the model sends.
//!
//! ```
//! use router::builtin::{DemoDb, ToolError};
//!
//! let mut db = DemoDb::seeded();
//! let bill = db.call("check_billing", r#"{"customer_id": "C-1042"}"#)?;
//! assert_eq!(bill["recent_charges"][0]["amount"], "$49.00");
//! assert_eq!(bill["recent_charges"][0]["date"], "2026-01-15");
//! let caller = db.customer_for_caller("\"Jane\" <sip:alice@192.0.2.1>;tag=1");
//! assert_eq!(caller.map(|c| c.id.as_str()), Some("C-1042"));
//! # Ok::<(), ToolError>(())
//! ```

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The tools this backend implements.
pub const BUILTIN_TOOLS: [&str; 3] = ["check_billing", "get_upgrade_options", "record_upgrade"];

/// How many charges `check_billing` lists (newest first).
pub const RECENT_CHARGES: usize = 3;

/// A plan of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Display name, also what the model names it by (case-insensitive): `Standard`.
    pub name: String,
    /// Monthly price in cents.
    pub monthly_cents: u32,
    /// What it includes.
    pub features: Vec<String>,
}

/// One charge on a customer's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    /// ISO date, `2026-01-15`.
    pub date: String,
    /// Cents.
    pub amount_cents: u32,
    /// What it was for.
    pub description: String,
}

/// A recorded plan change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upgrade {
    /// `UPG-<customer digits>-<sequence>`.
    pub confirmation_id: String,
    /// The plan before.
    pub from_plan: String,
    /// The plan after.
    pub to_plan: String,
    /// The price the caller agreed to, as the model said it (`$79/month`), if it said one.
    pub agreed_price: Option<String>,
    /// The result `record_upgrade` returned, returned again for a repeated call.
    #[serde(skip)]
    result: Value,
}

/// A customer of the demo database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    /// Account id, `C-1042`.
    pub id: String,
    /// Full name.
    pub name: String,
    /// E.164 phone number the customer calls from (`+15550100`).
    pub phone: String,
    /// SIP user names the customer calls from (`alice`), compared case-insensitively.
    pub sip_users: Vec<String>,
    /// Current plan name (a [`Plan::name`]).
    pub plan: String,
    /// Account status: `active`, `past_due`.
    pub status: String,
    /// Charges, oldest first.
    pub charges: Vec<Charge>,
    /// ISO date of the next renewal charge.
    pub next_renewal: String,
    /// Plan changes recorded in this process, oldest first.
    pub upgrades: Vec<Upgrade>,
}

impl Customer {
    /// A short view for the context envelope's `customer_state`: id, name, plan, status and
    /// next renewal.
    pub fn state(&self) -> Value {
        json!({
            "customer_id": self.id,
            "name": self.name,
            "plan": self.plan,
            "status": self.status,
            "next_renewal": self.next_renewal,
        })
    }
}

/// Why a built-in tool call failed; `Display` is the text for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No built-in tool by that name.
    #[error("unknown tool \"{0}\"; the built-in tools are check_billing, get_upgrade_options and record_upgrade")]
    UnknownTool(String),
    /// The arguments are not JSON, not an object, or miss or mistype a field.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// No customer with that id.
    #[error(
        "no customer with id \"{0}\"; ask the caller for their account id (it looks like C-1042)"
    )]
    UnknownCustomer(String),
    /// No plan by that name.
    #[error("no plan named \"{plan}\"; the plans are {known}")]
    UnknownPlan {
        /// As the model wrote it.
        plan: String,
        /// The catalogue, for the model.
        known: String,
    },
    /// `from_plan` is not the customer's current plan.
    #[error("customer {customer} is on the {current} plan, not {claimed}")]
    PlanMismatch {
        /// Customer id.
        customer: String,
        /// The plan they are on.
        current: String,
        /// The `from_plan` the model sent.
        claimed: String,
    },
    /// The target plan does not cost more than the current one.
    #[error("{to} ({to_price}/month) is not an upgrade from {current} ({current_price}/month); record_upgrade only records upgrades")]
    NotAnUpgrade {
        /// The customer's current plan.
        current: String,
        /// Its price, `$49.00`.
        current_price: String,
        /// The requested plan.
        to: String,
        /// Its price.
        to_price: String,
    },
}

impl ToolError {
    /// A short machine-readable kind: `unknown_tool`, `bad_arguments`, `unknown_customer`,
    /// `unknown_plan`, `plan_mismatch`, `not_an_upgrade`.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::BadArguments(_) => "bad_arguments",
            ToolError::UnknownCustomer(_) => "unknown_customer",
            ToolError::UnknownPlan { .. } => "unknown_plan",
            ToolError::PlanMismatch { .. } => "plan_mismatch",
            ToolError::NotAnUpgrade { .. } => "not_an_upgrade",
        }
    }

    /// The function result to give the model: `{"error": "<text>", "code": "<kind>"}`.
    pub fn to_json(&self) -> Value {
        json!({ "error": self.to_string(), "code": self.code() })
    }
}

/// The demo database: plans (cheapest first) and customers. Cloneable snapshot; the bridge
/// keeps one per process behind a mutex, so upgrades last until it exits.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoDb {
    plans: Vec<Plan>,
    customers: Vec<Customer>,
    next_confirmation: u32,
}

/// `$49.00`.
pub fn dollars(cents: u32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn plan(name: &str, monthly_cents: u32, features: &[&str]) -> Plan {
    Plan {
        name: name.into(),
        monthly_cents,
        features: features.iter().map(|f| f.to_string()).collect(),
    }
}

fn charge(date: &str, amount_cents: u32, description: &str) -> Charge {
    Charge {
        date: date.into(),
        amount_cents,
        description: description.into(),
    }
}

impl DemoDb {
    /// The seed's data.
    ///
    /// Plans: Basic $19, Standard $49, Pro $79 a month. Customers:
    /// - `C-1042` Jane Doe (`+15550100`, SIP user `alice`): Standard, active, renewed
    ///   2026-01-15 for $49.00 (the monthly renewal the caller asks about), next renewal
    ///   2026-02-15;
    /// - `C-2077` Sam Lee (`+15550111`, `bob`): Basic, active, renews on the 3rd;
    /// - `C-3150` Maria Garcia (`+15550122`, `carol`): Pro, past due (the January renewal failed).
    pub fn seeded() -> DemoDb {
        let plans = vec![
            plan(
                "Basic",
                1_900,
                &[
                    "1 user",
                    "email support",
                    "10 GB storage",
                    "standard reports",
                ],
            ),
            plan(
                "Standard",
                4_900,
                &[
                    "up to 5 users",
                    "email and chat support",
                    "100 GB storage",
                    "custom reports",
                ],
            ),
            plan(
                "Pro",
                7_900,
                &[
                    "unlimited users",
                    "24/7 phone support",
                    "1 TB storage",
                    "advanced analytics",
                    "API access",
                ],
            ),
        ];
        let customers = vec![
            Customer {
                id: "C-1042".into(),
                name: "Jane Doe".into(),
                phone: "+15550100".into(),
                sip_users: vec!["alice".into()],
                plan: "Standard".into(),
                status: "active".into(),
                charges: vec![
                    charge("2025-11-15", 4_900, "Standard plan monthly renewal"),
                    charge("2025-12-15", 4_900, "Standard plan monthly renewal"),
                    charge("2026-01-15", 4_900, "Standard plan monthly renewal"),
                ],
                next_renewal: "2026-02-15".into(),
                upgrades: Vec::new(),
            },
            Customer {
                id: "C-2077".into(),
                name: "Sam Lee".into(),
                phone: "+15550111".into(),
                sip_users: vec!["bob".into()],
                plan: "Basic".into(),
                status: "active".into(),
                charges: vec![
                    charge("2025-12-03", 1_900, "Basic plan monthly renewal"),
                    charge("2026-01-03", 1_900, "Basic plan monthly renewal"),
                ],
                next_renewal: "2026-02-03".into(),
                upgrades: Vec::new(),
            },
            Customer {
                id: "C-3150".into(),
                name: "Maria Garcia".into(),
                phone: "+15550122".into(),
                sip_users: vec!["carol".into()],
                plan: "Pro".into(),
                status: "past_due".into(),
                charges: vec![
                    charge("2025-12-20", 7_900, "Pro plan monthly renewal"),
                    charge(
                        "2026-01-20",
                        0,
                        "Pro plan monthly renewal: card declined, $79.00 outstanding",
                    ),
                ],
                next_renewal: "2026-02-20".into(),
                upgrades: Vec::new(),
            },
        ];
        DemoDb {
            plans,
            customers,
            next_confirmation: 1,
        }
    }

    /// The catalogue, cheapest first.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// All customers.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// The customer with this account id; lenient: `C-1042`, `c1042`, ` C 1042 ` and `1042`
    /// all find `C-1042`.
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        let i = self.customer_index(id)?;
        Some(&self.customers[i])
    }

    /// Whether `tool` is one of [`BUILTIN_TOOLS`].
    pub fn handles(tool: &str) -> bool {
        BUILTIN_TOOLS.contains(&tool)
    }

    /// The customer calling from `identity`: a From / P-Asserted-Identity header value
    /// (`"Jane" <sip:alice@host>;tag=x`), a URI (`sip:+15550100@carrier;user=phone`,
    /// `tel:+1-555-0100`), or a bare user or number. A user part made of digits (and `+`, `-`,
    /// `.`, spaces, parentheses) is matched against phone numbers by their digits; otherwise
    /// against SIP user names, case-insensitively.
    pub fn customer_for_caller(&self, identity: &str) -> Option<&Customer> {
        let user = caller_user(identity)?;
        let phone_like = user
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.() ".contains(c));
        if phone_like {
            let digits: String = user.chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                return None;
            }
            self.customers.iter().find(|c| {
                c.phone
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .eq(digits.chars())
            })
        } else {
            self.customers
                .iter()
                .find(|c| c.sip_users.iter().any(|u| u.eq_ignore_ascii_case(user)))
        }
    }

    /// Runs built-in `tool` with the model's `arguments` (the JSON text of the function call).
    /// `Ok` is the function result; `Err`'s text (or [`ToolError::to_json`]) goes back to the
    /// model instead.
    pub fn call(&mut self, tool: &str, arguments: &str) -> Result<Value, ToolError> {
        if !Self::handles(tool) {
            return Err(ToolError::UnknownTool(tool.to_string()));
        }
        let args = parse_arguments(arguments)?;
        match tool {
            "check_billing" => self.check_billing(&args),
            "get_upgrade_options" => self.get_upgrade_options(&args),
            _ => self.record_upgrade(&args),
        }
    }

    fn customer_index(&self, id: &str) -> Option<usize> {
        let want = normalize_customer_id(id)?;
        self.customers
            .iter()
            .position(|c| normalize_customer_id(&c.id).as_deref() == Some(want.as_str()))
    }

    fn customer_arg(&self, args: &Map<String, Value>) -> Result<usize, ToolError> {
        let id = match args.get("customer_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => {
                return Err(ToolError::BadArguments(
                    "missing \"customer_id\" (the customer's account id, e.g. C-1042)".into(),
                ))
            }
            Some(Value::String(_)) => {
                return Err(ToolError::BadArguments(
                    "\"customer_id\" is empty (the customer's account id, e.g. C-1042)".into(),
                ))
            }
            Some(other) => {
                return Err(ToolError::BadArguments(format!(
                    "\"customer_id\" must be a string such as \"C-1042\", not {}",
                    kind(other)
                )))
            }
        };
        self.customer_index(&id)
            .ok_or(ToolError::UnknownCustomer(id))
    }

    fn plan_named(&self, name: &str) -> Result<&Plan, ToolError> {
        let want = normalize_plan(name);
        self.plans
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&want))
            .ok_or_else(|| ToolError::UnknownPlan {
                plan: name.to_string(),
                known: self.catalogue(),
            })
    }

    fn catalogue(&self) -> String {
        self.plans
            .iter()
            .map(|p| format!("{} ({}/month)", p.name, dollars(p.monthly_cents)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn current_plan(&self, c: &Customer) -> &Plan {
        // Seeded customers and recorded upgrades only name catalogue plans.
        self.plans
            .iter()
            .find(|p| p.name == c.plan)
            .unwrap_or(&self.plans[0])
    }

    fn check_billing(&self, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let c = &self.customers[self.customer_arg(args)?];
        let plan = self.current_plan(c);
        let recent: Vec<Value> = c
            .charges
            .iter()
            .rev()
            .take(RECENT_CHARGES)
            .map(|ch| {
                json!({
                    "date": ch.date,
                    "amount": dollars(ch.amount_cents),
                    "description": ch.description,
                })
            })
            .collect();
        let billing_status = if c.status == "past_due" {
            "payment overdue"
        } else {
            "paid up"
        };
        Ok(json!({
            "customer_id": c.id,
            "name": c.name,
            "plan": plan.name,
            "monthly_price": dollars(plan.monthly_cents),
            "billing_cycle": "monthly",
            "status": c.status,
            "billing_status": billing_status,
            "recent_charges": recent,
            "next_renewal": {
                "date": c.next_renewal,
                "amount": dollars(plan.monthly_cents),
            },
        }))
    }

    fn get_upgrade_options(&self, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let c = &self.customers[self.customer_arg(args)?];
        let current = self.current_plan(c);
        let options: Vec<Value> = self
            .plans
            .iter()
            .filter(|p| p.monthly_cents > current.monthly_cents)
            .map(|p| {
                json!({
                    "plan": p.name,
                    "monthly_price": dollars(p.monthly_cents),
                    "price_difference": dollars(p.monthly_cents - current.monthly_cents),
                    "features": p.features,
                })
            })
            .collect();
        let mut out = json!({
            "customer_id": c.id,
            "current_plan": {
                "plan": current.name,
                "monthly_price": dollars(current.monthly_cents),
                "features": current.features,
            },
            "options": options,
        });
        if options_empty(&out) {
            out["note"] = json!(format!(
                "{} is already the highest plan; there is nothing to upgrade to",
                current.name
            ));
        }
        Ok(out)
    }

    fn record_upgrade(&mut self, args: &Map<String, Value>) -> Result<Value, ToolError> {
        let ci = self.customer_arg(args)?;
        let to_arg = string_arg(args, "to_plan", true)?.unwrap_or_default();
        let from_arg = string_arg(args, "from_plan", false)?;
        let price_arg = string_arg(args, "price", false)?;
        let to = self.plan_named(&to_arg)?.clone();
        let from_named = match &from_arg {
            Some(f) => Some(self.plan_named(f)?.name.clone()),
            None => None,
        };
        let c = &self.customers[ci];

        // A repeated call (the model retried, or the caller said yes twice): the same result.
        if let Some(last) = c.upgrades.last() {
            let same_from = from_named.as_ref().is_none_or(|f| *f == last.from_plan);
            if last.to_plan == to.name && c.plan == to.name && same_from {
                return Ok(last.result.clone());
            }
        }

        let current = self.current_plan(c).clone();
        if let Some(f) = &from_named {
            if *f != current.name {
                return Err(ToolError::PlanMismatch {
                    customer: c.id.clone(),
                    current: current.name,
                    claimed: from_arg.unwrap_or_default(),
                });
            }
        }
        if to.monthly_cents <= current.monthly_cents {
            return Err(ToolError::NotAnUpgrade {
                current: current.name.clone(),
                current_price: dollars(current.monthly_cents),
                to: to.name.clone(),
                to_price: dollars(to.monthly_cents),
            });
        }

        let digits: String = c.id.chars().filter(|c| c.is_ascii_digit()).collect();
        let confirmation_id = format!("UPG-{digits}-{:04}", self.next_confirmation);
        self.next_confirmation += 1;
        let list = dollars(to.monthly_cents);
        let mut result = json!({
            "status": "upgraded",
            "confirmation_id": confirmation_id,
            "customer_id": c.id,
            "from_plan": current.name,
            "to_plan": to.name,
            "monthly_price": list,
            "price_difference": dollars(to.monthly_cents - current.monthly_cents),
            "effective": "immediately",
            "next_renewal": {"date": c.next_renewal, "amount": list},
        });
        if let Some(p) = &price_arg {
            result["agreed_price"] = json!(p);
            if parse_cents(p) != Some(to.monthly_cents) {
                result["note"] = json!(format!(
                    "the agreed price {p} differs from the {} list price {list}/month; the account is billed at the list price",
                    to.name
                ));
            }
        }
        let c = &mut self.customers[ci];
        c.plan = to.name.clone();
        c.upgrades.push(Upgrade {
            confirmation_id,
            from_plan: current.name,
            to_plan: to.name,
            agreed_price: price_arg,
            result: result.clone(),
        });
        Ok(result)
    }
}

fn options_empty(v: &Value) -> bool {
    v["options"].as_array().is_some_and(|a| a.is_empty())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The arguments text as an object; empty text is `{}`.
fn parse_arguments(arguments: &str) -> Result<Map<String, Value>, ToolError> {
    if arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ToolError::BadArguments(format!(
            "the arguments must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(e) => Err(ToolError::BadArguments(format!(
            "the arguments are not valid JSON ({e})"
        ))),
    }
}

/// A string argument, trimmed; `None` when absent, null or empty and not `required`.
fn string_arg(
    args: &Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<String>, ToolError> {
    match args.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            if required {
                Err(ToolError::BadArguments(format!("missing \"{name}\"")))
            } else {
                Ok(None)
            }
        }
        Some(other) => Err(ToolError::BadArguments(format!(
            "\"{name}\" must be a string, not {}",
            kind(other)
        ))),
    }
}

/// `C-1042`, `c1042`, `C 1042`, `1042` -> `C1042`; `None` when nothing is left.
fn normalize_customer_id(id: &str) -> Option<String> {
    let s: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.is_empty() {
        None
    } else if s.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("C{s}"))
    } else {
        Some(s)
    }
}

/// `Pro`, ` pro plan `, `the Pro plan` -> `pro`-ish for a case-insensitive comparison.
fn normalize_plan(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix("the ") {
        s = rest.trim().to_string();
    }
    if let Some(rest) = s.strip_suffix(" plan") {
        s = rest.trim().to_string();
    }
    s
}

/// `$79/month`, `79`, `$79.00 per month`, `99 dollars` -> cents; `None` if there is no number.
fn parse_cents(price: &str) -> Option<u32> {
    let start = price.find(|c: char| c.is_ascii_digit())?;
    let rest = &price[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(rest.len());
    let num: String = rest[..end].chars().filter(|c| *c != ',').collect();
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num.as_str(), ""),
    };
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u32>().ok()? * 10,
        _ => frac.get(..2)?.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

/// The user part of a caller identity: display name, angle brackets, header parameters,
/// scheme, host and URI parameters removed.
fn caller_user(identity: &str) -> Option<&str> {
    let mut s = identity.trim();
    if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>')) {
        if open < close {
            s = &s[open + 1..close];
        }
    } else if let Some(semi) = s.find(';') {
        // `sip:alice@host;tag=x` without brackets: header parameters follow the URI.
        s = &s[..semi];
    }
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let s = ["sips:", "sip:", "tel:"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(s, |p| &s[p.len()..]);
    let s = s.split('@').next().unwrap_or(s);
    // A password (`alice:pw@`) or URI parameters (`tel:+1555;phone-context=x`, `alice;x=y`).
    let s = s.split([':', ';']).next().unwrap_or(s).trim();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_user_forms() {
        assert_eq!(
            caller_user("\"Jane\" <sip:alice@192.0.2.1:5060>;tag=1"),
            Some("alice")
        );
        assert_eq!(caller_user("sip:alice@host;tag=1"), Some("alice"));
        assert_eq!(
            caller_user("<sip:+15550100@carrier;user=phone>"),
            Some("+15550100")
        );
        assert_eq!(
            caller_user("tel:+1-555-0100;phone-context=x"),
            Some("+1-555-0100")
        );
        assert_eq!(caller_user("SIPS:bob:pw@h"), Some("bob"));
        assert_eq!(caller_user("  alice "), Some("alice"));
        assert_eq!(caller_user("<sip:@host>"), None);
        assert_eq!(caller_user(""), None);
    }

    #[test]
    fn prices_parse() {
        assert_eq!(parse_cents("$79/month"), Some(7_900));
        assert_eq!(parse_cents("$99.00 per month"), Some(9_900));
        assert_eq!(parse_cents("99"), Some(9_900));
        assert_eq!(parse_cents("$1,099.5"), Some(109_950));
        assert_eq!(parse_cents("ninety-nine"), None);
        assert_eq!(dollars(5_000), "$50.00");
        assert_eq!(dollars(1_905), "$19.05");
    }

    #[test]
    fn ids_and_plans_normalize() {
        assert_eq!(normalize_customer_id(" c-1042 ").as_deref(), Some("C1042"));
        assert_eq!(normalize_customer_id("1042").as_deref(), Some("C1042"));
        assert_eq!(normalize_customer_id("--"), None);
        assert_eq!(normalize_plan(" The Pro plan "), "pro");
    }
}
