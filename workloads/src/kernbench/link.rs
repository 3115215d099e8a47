//! The link step: read every object, resolve symbols across them, patch call sites with final
//! addresses and produce one image (kernbench's final vmlinux link).

use std::collections::BTreeMap;

use super::compile::OBJ_MAGIC;

/// Image magic and version.
const IMAGE_MAGIC: &[u8; 6] = b"PVIMG1";

/// A parsed object.
struct Object {
    syms: Vec<(String, bool)>,
    funcs: Vec<(u32, u32)>,
    code: Vec<u8>,
    relocs: Vec<u32>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated object at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

fn parse_object(bytes: &[u8]) -> Result<Object, String> {
    let mut r = Reader { b: bytes, at: 0 };
    if r.take(4)? != OBJ_MAGIC {
        return Err("not an object (bad magic)".into());
    }
    let _file = r.u32()?;
    let _hash = r.take(8)?;
    let nsyms = r.u32()?;
    let mut syms = Vec::with_capacity(nsyms.min(1 << 16) as usize);
    for _ in 0..nsyms {
        let defined = r.u8()? != 0;
        let len = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "symbol name is not UTF-8".to_string())?;
        syms.push((name.to_string(), defined));
    }
    let nfuncs = r.u32()?;
    let mut funcs = Vec::new();
    for _ in 0..nfuncs {
        funcs.push((r.u32()?, r.u32()?));
    }
    let code_len = r.u32()? as usize;
    let code = r.take(code_len)?.to_vec();
    let nrelocs = r.u32()?;
    let mut relocs = Vec::new();
    for _ in 0..nrelocs {
        relocs.push(r.u32()?);
    }
    Ok(Object {
        syms,
        funcs,
        code,
        relocs,
    })
}

/// Links objects (in the given, deterministic order) into one image. Errors name the object
/// index and the problem (bad format, duplicate or undefined symbol).
pub(crate) fn link(objects: &[Vec<u8>]) -> Result<Vec<u8>, (usize, String)> {
    let parsed: Vec<Object> = objects
        .iter()
        .enumerate()
        .map(|(i, b)| parse_object(b).map_err(|e| (i, e)))
        .collect::<Result<_, _>>()?;

    // Lay code out object after object; each defined function's address is its object's base
    // plus its offset.
    let mut bases = Vec::with_capacity(parsed.len());
    let mut size = 0usize;
    for o in &parsed {
        bases.push(size);
        size += o.code.len();
    }
    let mut addr: BTreeMap<&str, u32> = BTreeMap::new();
    for (i, o) in parsed.iter().enumerate() {
        for &(sym, at) in &o.funcs {
            let (name, _) = o
                .syms
                .get(sym as usize)
                .ok_or_else(|| (i, format!("function symbol {sym} out of range")))?;
            if addr.insert(name, (bases[i] + at as usize) as u32).is_some() {
                return Err((i, format!("duplicate symbol {name}")));
            }
        }
    }

    let mut code = Vec::with_capacity(size);
    for (i, o) in parsed.iter().enumerate() {
        let mut c = o.code.clone();
        for &at in &o.relocs {
            let at = at as usize;
            let slot = c
                .get(at..at + 4)
                .ok_or_else(|| (i, format!("relocation at {at} outside the code")))?;
            let sym = u32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]) as usize;
            let (name, _) = o
                .syms
                .get(sym)
                .ok_or_else(|| (i, format!("relocation symbol {sym} out of range")))?;
            let target = addr
                .get(name.as_str())
                .ok_or_else(|| (i, format!("undefined reference to {name}")))?;
            c[at..at + 4].copy_from_slice(&target.to_le_bytes());
        }
        code.extend_from_slice(&c);
    }

    let mut out = Vec::with_capacity(code.len() + addr.len() * 24 + 16);
    out.extend_from_slice(IMAGE_MAGIC);
    out.extend_from_slice(&(addr.len() as u32).to_le_bytes());
    for (name, a) in &addr {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&a.to_le_bytes());
    }
    out.extend_from_slice(&(code.len() as u32).to_le_bytes());
    out.extend_from_slice(&code);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{compile::compile, tree::generate};
    use super::*;

    #[test]
    fn links_generated_objects_and_rejects_missing_symbols() {
        let objs: Vec<Vec<u8>> = (0..6).map(|f| compile(&generate(f), f).unwrap()).collect();
        let image = link(&objs).unwrap();
        assert!(image.starts_with(IMAGE_MAGIC));
        // Without file 0, later files' calls into it are undefined (file 0 is called by some
        // later file with overwhelming likelihood; the assertion checks the error shape).
        if let Err((_, msg)) = link(&objs[1..]) {
            assert!(msg.contains("undefined reference"), "{msg}");
        }
        assert!(link(&[b"nope".to_vec()]).is_err());
    }
}
