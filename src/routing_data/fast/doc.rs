//! The schema (`schema.rs`) over the reader: each field read as the full
//! parser's `Deserialize` would read it, or the file given up. Unknown and
//! duplicate keys, missing required fields, nulls where the schema has no
//! `Option`, and values of the wrong type are all given up: they are
//! errors, and errors are the full parser's to report.

use super::Unsure;
use super::reader::{Ctx, Node, Reader};
use super::scalar::{is_null, plain_is_text};
use crate::routing::DiversionStyle;
use crate::routing_data::schema::{
    AccountDoc, ContactDoc, Lined, NoPhoneDoc, NumberDoc, OnNoAnswerDoc, RoutingFile, UserDoc,
};

type R<T> = Result<T, Unsure>;

fn give_up<T>(line: u32, why: &'static str) -> R<T> {
    Err(Unsure { line, why })
}

pub(super) fn routing_file(text: &str, max_nodes: usize, max_depth: usize) -> R<RoutingFile> {
    let mut r = Reader::new(text, max_nodes, max_depth);
    let (root, line) = r.root()?;
    let mut accounts = None;
    r.map(root, |r, key, ctx| match key {
        "accounts" if accounts.is_none() => {
            accounts = Some(seq(r, ctx, account)?.value);
            Ok(())
        }
        _ => give_up(line, "an unknown or repeated key"),
    })?;
    r.finish()?;
    Ok(RoutingFile {
        accounts: accounts.unwrap_or_default(),
    })
}

/// A sequence of `item`s, with the line it starts on.
fn seq<'a, T>(
    r: &mut Reader<'a>,
    ctx: Ctx,
    mut item: impl FnMut(&mut Reader<'a>, Ctx) -> R<T>,
) -> R<Lined<Vec<T>>> {
    let (node, line) = r.value(ctx)?;
    let mut items = Vec::new();
    r.seq(node, |r, ctx| {
        items.push(item(r, ctx)?);
        Ok(())
    })?;
    Ok(Lined { value: items, line })
}

/// A field that may be written once.
fn once<T>(slot: &mut Option<T>, value: R<T>) -> R<()> {
    if slot.is_some() {
        // The line is the parser's to report.
        return give_up(0, "a repeated key");
    }
    *slot = Some(value?);
    Ok(())
}

/// A string field: quoted, or plain and surely text.
fn text(r: &mut Reader<'_>, ctx: Ctx) -> R<Lined<String>> {
    match r.value(ctx)? {
        (Node::Scalar(s), line) if !s.plain || plain_is_text(&s.text) => Ok(Lined {
            value: s.text.into_owned(),
            line,
        }),
        (_, line) => give_up(line, "not surely a string"),
    }
}

/// An optional string field: null (written or not) is `None`.
fn opt_text(r: &mut Reader<'_>, ctx: Ctx) -> R<Option<Lined<String>>> {
    match r.value(ctx)? {
        (Node::Empty, _) => Ok(None),
        (Node::Scalar(s), _) if s.plain && is_null(&s.text) => Ok(None),
        (Node::Scalar(s), line) if !s.plain || plain_is_text(&s.text) => Ok(Some(Lined {
            value: s.text.into_owned(),
            line,
        })),
        (_, line) => give_up(line, "not surely a string"),
    }
}

/// A boolean: YAML 1.2's plain `true` or `false`.
fn boolean(r: &mut Reader<'_>, ctx: Ctx) -> R<bool> {
    match r.value(ctx)? {
        (Node::Scalar(s), _) if s.plain && s.text == "true" => Ok(true),
        (Node::Scalar(s), _) if s.plain && s.text == "false" => Ok(false),
        (_, line) => give_up(line, "not surely a boolean"),
    }
}

/// A unit enum's variant, by its name, quoted or plain.
fn variant<T: Copy>(r: &mut Reader<'_>, ctx: Ctx, names: &[(&str, T)]) -> R<Lined<T>> {
    match r.value(ctx)? {
        (Node::Scalar(s), line) => {
            // A plain `off` may be a boolean to a YAML 1.1 reader.
            if s.plain && !plain_is_text(&s.text) {
                return give_up(line, "not surely a name");
            }
            match names.iter().find(|(name, _)| *name == s.text) {
                Some((_, v)) => Ok(Lined { value: *v, line }),
                None => give_up(line, "not one of the names"),
            }
        }
        (_, line) => give_up(line, "not a name"),
    }
}

const NO_PHONE: &[(&str, NoPhoneDoc)] = &[
    ("reject", NoPhoneDoc::Reject),
    ("forward", NoPhoneDoc::Forward),
];
const ON_NO_ANSWER: &[(&str, OnNoAnswerDoc)] = &[
    ("none", OnNoAnswerDoc::None),
    ("forward", OnNoAnswerDoc::Forward),
];
const DIVERSION: &[(&str, DiversionStyle)] = &[
    ("header", DiversionStyle::Header),
    ("history-info", DiversionStyle::HistoryInfo),
    ("off", DiversionStyle::Off),
];

fn mapping<'a>(
    r: &mut Reader<'a>,
    ctx: Ctx,
    entry: impl FnMut(&mut Reader<'a>, &str, Ctx) -> R<()>,
) -> R<u32> {
    let (node, line) = r.value(ctx)?;
    if !matches!(node, Node::BlockMap { .. } | Node::FlowMap) {
        return give_up(line, "a mapping expected");
    }
    r.map(node, entry)?;
    Ok(line)
}

fn account(r: &mut Reader<'_>, ctx: Ctx) -> R<AccountDoc> {
    let mut id = None;
    let mut region = None;
    let mut forward_to = None;
    let mut ring_first = None;
    let mut no_phone = None;
    let mut no_answer = None;
    let mut template = None;
    let mut diversion = None;
    let mut users = None;
    let mut numbers = None;
    let mut contacts = None;
    let line = mapping(r, ctx, |r, key, ctx| match key {
        "id" => once(&mut id, text(r, ctx)),
        "region" => once(&mut region, opt_text(r, ctx)),
        "forward_to" => once(&mut forward_to, opt_text(r, ctx)),
        "ring_number_user_first" => once(&mut ring_first, boolean(r, ctx)),
        "when_user_has_no_phone" => once(&mut no_phone, variant(r, ctx, NO_PHONE)),
        "on_no_answer" => once(&mut no_answer, variant(r, ctx, ON_NO_ANSWER)),
        "contact_template" => once(&mut template, opt_text(r, ctx)),
        "diversion" => once(&mut diversion, variant(r, ctx, DIVERSION)),
        "users" => once(&mut users, seq(r, ctx, user)),
        "numbers" => once(&mut numbers, seq(r, ctx, number)),
        "contacts" => once(&mut contacts, seq(r, ctx, contact)),
        _ => give_up(0, "an unknown key"),
    })?;
    let Some(id) = id else {
        return give_up(line, "an account without an id");
    };
    Ok(AccountDoc {
        id,
        region: region.flatten(),
        forward_to: forward_to.flatten(),
        ring_number_user_first: ring_first.unwrap_or(true),
        when_user_has_no_phone: no_phone.map(|v| v.value).unwrap_or_default(),
        on_no_answer: no_answer.map(|v| v.value).unwrap_or_default(),
        contact_template: template.flatten(),
        diversion: diversion.map(|v| v.value),
        // `ring_seconds` is an unknown key above: an account that has it
        // goes to the full parser, which reads it.
        ring_seconds: None,
        users: users.map(|u| u.value).unwrap_or_default(),
        numbers: numbers.map(|n| n.value).unwrap_or_default(),
        contacts: contacts.unwrap_or_default(),
    })
}

fn user(r: &mut Reader<'_>, ctx: Ctx) -> R<UserDoc> {
    let mut id = None;
    let mut name = None;
    let mut phone = None;
    let mut numbers = None;
    let line = mapping(r, ctx, |r, key, ctx| match key {
        "id" => once(&mut id, text(r, ctx)),
        "name" => once(&mut name, opt_text(r, ctx)),
        "phone" => once(&mut phone, opt_text(r, ctx)),
        "numbers" => once(&mut numbers, seq(r, ctx, text)),
        _ => give_up(0, "an unknown key"),
    })?;
    let Some(id) = id else {
        return give_up(line, "a user without an id");
    };
    Ok(UserDoc {
        id,
        name: name.flatten().map(|n| n.value),
        phone: phone.flatten(),
        numbers: numbers.map(|n| n.value).unwrap_or_default(),
    })
}

fn number(r: &mut Reader<'_>, ctx: Ctx) -> R<NumberDoc> {
    let mut number = None;
    let mut forward_to = None;
    let mut user = None;
    let mut no_answer = None;
    let line = mapping(r, ctx, |r, key, ctx| match key {
        "number" => once(&mut number, text(r, ctx)),
        "forward_to" => once(&mut forward_to, opt_text(r, ctx)),
        "user" => once(&mut user, opt_text(r, ctx)),
        "on_no_answer" => once(&mut no_answer, variant(r, ctx, ON_NO_ANSWER)),
        _ => give_up(0, "an unknown key"),
    })?;
    let Some(number) = number else {
        return give_up(line, "a number without its number");
    };
    Ok(NumberDoc {
        number,
        forward_to: forward_to.flatten(),
        user: user.flatten(),
        on_no_answer: no_answer,
        ring_seconds: None,
    })
}

fn contact(r: &mut Reader<'_>, ctx: Ctx) -> R<ContactDoc> {
    let mut phones = None;
    let mut user = None;
    let mut name = None;
    let line = mapping(r, ctx, |r, key, ctx| match key {
        "phones" => once(&mut phones, seq(r, ctx, text)),
        "user" => once(&mut user, opt_text(r, ctx)),
        "name" => once(&mut name, opt_text(r, ctx)),
        _ => give_up(0, "an unknown key"),
    })?;
    let Some(phones) = phones else {
        return give_up(line, "a contact without phones");
    };
    Ok(ContactDoc {
        phones: phones.value,
        user: user.flatten(),
        name: name.flatten().map(|n| n.value),
    })
}
