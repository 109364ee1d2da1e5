//! Parcel bytes as libbinder writes and reads them, rule by rule. Each function names the
//! libbinder or NDK function it follows (frameworks/native `libs/binder/Parcel.cpp`,
//! `Status.cpp`, `Stability.cpp`, `ndk/parcel.cpp`, `ndk/include_cpp/android/binder_parcel_utils.h`,
//! and the AIDL compiler's NDK backend for parcelable and union bodies), so a reviewer can hold
//! the two side by side. Read at AOSPA/android_frameworks_native 7c8287a1f3ee (Android 15).
//!
//! Nothing here comes from rsbinder: the point is to catch rsbinder drifting from libbinder.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::driver::{
    self, FlatObject, BINDER_TYPE_BINDER, BINDER_TYPE_FD, BINDER_TYPE_HANDLE,
    FLAT_BINDER_FLAG_ACCEPTS_FDS, FLAT_OBJECT_SIZE,
};

/// `B_PACK_CHARS('S','Y','S','T')`: the interface-token header of a system (and LLNDK: vendor
/// processes load the system libbinder_ndk) libbinder, `kHeader` in Parcel.cpp.
pub const HEADER_SYST: u32 = u32::from_be_bytes(*b"SYST");
/// `B_PACK_CHARS('V','N','D','R')`: the header of a libbinder built for the vendor (VNDK) image.
pub const HEADER_VNDR: u32 = u32::from_be_bytes(*b"VNDR");
/// `STRICT_MODE_PENALTY_GATHER` (Parcel.cpp): set in every interface token's first word.
pub const STRICT_MODE_PENALTY_GATHER: u32 = 1 << 31;
/// `IPCThreadState::kUnsetWorkSource`.
pub const UNSET_WORK_SOURCE: i32 = -1;

/// `Stability::Level` (include/binder/Stability.h).
pub const STABILITY_UNDECLARED: i32 = 0;
pub const STABILITY_SYSTEM: i32 = 0b001100;
pub const STABILITY_VINTF: i32 = 0b111111;

/// `binder::Status` exception codes (include/binder/Status.h).
pub const EX_NONE: i32 = 0;
pub const EX_SECURITY: i32 = -1;
pub const EX_SERVICE_SPECIFIC: i32 = -8;
pub const EX_HAS_REPLY_HEADER: i32 = -128;

/// `status_t` values (utils/Errors.h).
pub const BAD_TYPE: i32 = i32::MIN + 1;
pub const UNKNOWN_TRANSACTION: i32 = -libc::EBADMSG;
pub const INVALID_OPERATION: i32 = -libc::ENOSYS;
/// `UNKNOWN_ERROR + 8`.
pub const UNEXPECTED_NULL: i32 = i32::MIN + 8;

/// A rule broken on purpose, to show that the test naming it notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Break {
    /// The interface token carries `VNDR` instead of `SYST`.
    VndrHeader,
    /// Parcelables are written without their int32 size header.
    NoParcelableSize,
    /// Unions are written with the tag of the next field.
    WrongUnionTag,
    /// A binder object is not followed by its stability word.
    NoStabilityWord,
}

/// A parcel under construction: data bytes plus the offsets of its objects.
#[derive(Default, Debug)]
pub struct Writer {
    pub data: Vec<u8>,
    pub offsets: Vec<u64>,
    broken: Option<Break>,
}

impl Writer {
    pub fn new(broken: Option<Break>) -> Self {
        Self {
            broken,
            ..Default::default()
        }
    }

    fn breaks(&self, rule: Break) -> bool {
        self.broken == Some(rule)
    }

    /// `Parcel::writeAligned`: every value starts on a 4-byte boundary.
    fn pad(&mut self) {
        while self.data.len() % 4 != 0 {
            self.data.push(0);
        }
    }

    /// `Parcel::writeInt32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.i32(v as i32)
    }

    /// `Parcel::writeInt64`: 8 bytes, only 4-aligned (Parcel aligns to 4, not to 8).
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// `Parcel::writeBool`: an int32 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.i32(i32::from(v))
    }

    /// `Parcel::writeString16(const char16_t*, size_t)`: int32 length in UTF-16 units (-1 for
    /// null), the units, a 0 unit, zero padding to 4 (`writeInplace`). `@utf8InCpp String`
    /// goes over the wire the same way: `AParcel_writeString` converts UTF-8 to UTF-16.
    pub fn string16(&mut self, s: Option<&str>) -> &mut Self {
        let Some(s) = s else {
            return self.i32(-1);
        };
        let units: Vec<u16> = s.encode_utf16().collect();
        self.i32(units.len() as i32);
        self.raw_units(&units)
    }

    /// A String16 body with a length that says something else (for hostile-length tests).
    pub fn string16_claiming(&mut self, claimed_len: i32, units: &[u16]) -> &mut Self {
        self.i32(claimed_len);
        self.raw_units(units)
    }

    fn raw_units(&mut self, units: &[u16]) -> &mut Self {
        for u in units {
            self.data.extend_from_slice(&u.to_le_bytes());
        }
        self.data.extend_from_slice(&0u16.to_le_bytes());
        self.pad();
        self
    }

    /// `Parcel::writeInterfaceToken`: strict-mode policy with PENALTY_GATHER, the work-source
    /// uid (unset), the `kHeader`, then the descriptor as String16.
    pub fn interface_token(&mut self, descriptor: &str) -> &mut Self {
        self.u32(STRICT_MODE_PENALTY_GATHER);
        self.i32(UNSET_WORK_SOURCE);
        let header = if self.breaks(Break::VndrHeader) {
            HEADER_VNDR
        } else {
            HEADER_SYST
        };
        self.u32(header);
        self.string16(Some(descriptor))
    }

    /// `Parcel::writeObject(val, nullMetaData)`: the flat object in the data, and its offset in
    /// the object list unless it is a null binder (`val.binder == 0` and no meta data).
    fn object(&mut self, object: &FlatObject, listed: bool) -> &mut Self {
        self.pad();
        if listed {
            self.offsets.push(self.data.len() as u64);
        }
        self.data.extend_from_slice(&driver::object_bytes(object));
        self
    }

    /// `Parcel::writeFileDescriptor(fd, takeOwnership=false)`: BINDER_TYPE_FD, flags 0, the fd
    /// in the handle field, cookie 0 (the sender keeps its fd).
    pub fn file_descriptor(&mut self, fd: BorrowedFd<'_>) -> &mut Self {
        let object = FlatObject {
            kind: BINDER_TYPE_FD,
            flags: 0,
            value: fd.as_raw_fd() as u32 as u64,
            cookie: 0,
        };
        self.object(&object, true)
    }

    /// `finishFlattenBinder`: the stability level as int32 after every binder object.
    fn stability(&mut self, level: i32) -> &mut Self {
        if self.breaks(Break::NoStabilityWord) {
            return self;
        }
        self.i32(level)
    }

    /// `Parcel::flattenBinder` for a local binder: BINDER_TYPE_BINDER, ACCEPTS_FDS plus the
    /// scheduling bits (SCHED_NORMAL, nice 19 unless background scheduling is disabled), our
    /// node's pointer and cookie, then its stability (a local binder of a system process is
    /// SYSTEM: `Stability::getLocalLevel`).
    pub fn local_binder(&mut self, node: u64, cookie: u64) -> &mut Self {
        let object = FlatObject {
            kind: BINDER_TYPE_BINDER,
            flags: FLAT_BINDER_FLAG_ACCEPTS_FDS | 19,
            value: node,
            cookie,
        };
        self.object(&object, true).stability(STABILITY_SYSTEM)
    }

    /// `Parcel::flattenBinder(nullptr)`: a zeroed BINDER_TYPE_BINDER object, not listed as an
    /// object (`writeObject(obj, false)` with binder 0), then stability UNDECLARED.
    pub fn null_binder(&mut self) -> &mut Self {
        let object = FlatObject {
            kind: BINDER_TYPE_BINDER,
            ..Default::default()
        };
        self.object(&object, false).stability(STABILITY_UNDECLARED)
    }

    /// `Parcel::flattenBinder` for a proxy: BINDER_TYPE_HANDLE with the handle, then the
    /// stability the proxy was received with.
    pub fn handle(&mut self, handle: u32, stability: i32) -> &mut Self {
        let object = FlatObject {
            kind: BINDER_TYPE_HANDLE,
            flags: 0,
            value: u64::from(handle),
            cookie: 0,
        };
        self.object(&object, true).stability(stability)
    }

    /// `AParcel_writeParcelable` (binder_parcel_utils.h): int32 1 (non-null), then the body
    /// the AIDL NDK backend generates for a parcelable: an int32 size placeholder, the fields,
    /// and the size (end - start, the size word included) written back over the placeholder.
    pub fn parcelable(&mut self, fields: impl FnOnce(&mut Self)) -> &mut Self {
        self.i32(1);
        self.parcelable_body(fields)
    }

    /// The parcelable body alone: what a `T[]` element, after its own non-null marker, holds.
    pub fn parcelable_body(&mut self, fields: impl FnOnce(&mut Self)) -> &mut Self {
        if self.breaks(Break::NoParcelableSize) {
            fields(self);
            return self;
        }
        let start = self.data.len();
        self.i32(0);
        fields(self);
        let size = (self.data.len() - start) as i32;
        self.data[start..start + 4].copy_from_slice(&size.to_le_bytes());
        self
    }

    /// `AParcel_writeParcelable` of an AIDL union: int32 1 (non-null), then the NDK union body:
    /// int32 tag (the field's index in declaration order) and the field's value. No size.
    pub fn union(&mut self, tag: i32, value: impl FnOnce(&mut Self)) -> &mut Self {
        self.i32(1);
        let tag = if self.breaks(Break::WrongUnionTag) {
            tag + 1
        } else {
            tag
        };
        self.i32(tag);
        value(self);
        self
    }
}

/// Why a reply did not parse the way libbinder_ndk would read it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("read past the end at byte {0}")]
    End(usize),
    #[error("the object at byte {0} is not in the object list")]
    NotAnObject(usize),
    #[error("a String16 at byte {0} is malformed")]
    BadString(usize),
    #[error("a parcelable at byte {at} has size {size}")]
    BadParcelableSize { at: usize, size: i32 },
    #[error("a non-null value at byte {0} is null")]
    UnexpectedNull(usize),
    #[error("expected {expected} at byte {at}, found {found:#x}")]
    Unexpected {
        at: usize,
        expected: &'static str,
        found: u64,
    },
}

pub type ReadResult<T> = std::result::Result<T, ReadError>;

/// A received parcel, read the way libbinder's `Parcel::read*` reads it.
pub struct Reader<'a> {
    data: &'a [u8],
    offsets: &'a [u64],
    pos: usize,
}

/// `binder::Status`, as `Status::readFromParcel` leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Exception { code: i32, message: String },
    ServiceSpecific { code: i32, message: String },
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], offsets: &'a [u64]) -> Self {
        Self {
            data,
            offsets,
            pos: 0,
        }
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(ReadError::End(self.pos))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(ReadError::End(self.pos))?;
        // `Parcel::readAligned` / `readInplace`: the position moves by the padded size.
        self.pos = end.next_multiple_of(4);
        Ok(bytes)
    }

    /// `Parcel::readInt32`.
    pub fn i32(&mut self) -> ReadResult<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    /// `Parcel::readInt64`.
    pub fn i64(&mut self) -> ReadResult<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    /// `Parcel::readBool`: any non-zero int32 is true.
    pub fn bool(&mut self) -> ReadResult<bool> {
        Ok(self.i32()? != 0)
    }

    /// `Parcel::readString16Inplace`: length -1 is null; otherwise length units, a 0 unit.
    pub fn string16(&mut self) -> ReadResult<Option<String>> {
        let at = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| ReadError::BadString(at))?;
        let bytes = self.take(len.checked_add(1).ok_or(ReadError::BadString(at))? * 2)?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        if units.last() != Some(&0) {
            return Err(ReadError::BadString(at));
        }
        String::from_utf16(&units[..len])
            .map(Some)
            .map_err(|_| ReadError::BadString(at))
    }

    /// A non-null String16 (`AParcel_readString` into a `std::string`).
    pub fn string(&mut self) -> ReadResult<String> {
        let at = self.pos;
        self.string16()?.ok_or(ReadError::UnexpectedNull(at))
    }

    /// `Parcel::readObject`: a flat object at the current position, which must be one the
    /// sender listed (libbinder refuses an fd or binder that is not in `mObjects`).
    pub fn object(&mut self) -> ReadResult<FlatObject> {
        let at = self.pos;
        let object = driver::object_at(self.data, at).ok_or(ReadError::End(at))?;
        if !self.offsets.contains(&(at as u64)) {
            return Err(ReadError::NotAnObject(at));
        }
        self.take(FLAT_OBJECT_SIZE)?;
        Ok(object)
    }

    /// `Parcel::readFileDescriptor`: a BINDER_TYPE_FD object; its fd is the receiver's.
    pub fn file_descriptor(&mut self) -> ReadResult<i32> {
        let at = self.pos;
        let object = self.object()?;
        if object.kind != BINDER_TYPE_FD {
            return Err(ReadError::Unexpected {
                at,
                expected: "BINDER_TYPE_FD",
                found: u64::from(object.kind),
            });
        }
        Ok(object.value as i32)
    }

    /// `AParcel_readParcelFileDescriptor` → `Parcel::readParcelable<ParcelFileDescriptor>`:
    /// int32 null marker; then `readParcelFileDescriptor`: int32 hasComm, the fd object (and a
    /// second fd if hasComm, which a native sender never writes).
    pub fn parcel_file_descriptor(&mut self) -> ReadResult<Option<i32>> {
        if self.i32()? == 0 {
            return Ok(None);
        }
        let at = self.pos;
        let has_comm = self.i32()?;
        if has_comm != 0 {
            return Err(ReadError::Unexpected {
                at,
                expected: "hasComm 0",
                found: has_comm as u64,
            });
        }
        self.file_descriptor().map(Some)
    }

    /// `Parcel::unflattenBinder` + `finishUnflattenBinder`: a binder object (or a null binder,
    /// which is not listed) and the int32 stability after it. Returns (object, stability).
    pub fn binder(&mut self) -> ReadResult<(Option<FlatObject>, i32)> {
        let at = self.pos;
        let object = driver::object_at(self.data, at).ok_or(ReadError::End(at))?;
        let object = if self.offsets.contains(&(at as u64)) {
            self.take(FLAT_OBJECT_SIZE)?;
            Some(object)
        } else if object.kind == BINDER_TYPE_BINDER && object.value == 0 {
            self.take(FLAT_OBJECT_SIZE)?;
            None
        } else {
            return Err(ReadError::NotAnObject(at));
        };
        let stability = self.i32()?;
        Ok((object, stability))
    }

    /// `Status::readFromParcel`: int32 exception; EX_HAS_REPLY_HEADER skips a header of the
    /// size that follows; EX_NONE ends it; otherwise a String16 message, an int32 remote
    /// stack-trace header size (skipped), and for EX_SERVICE_SPECIFIC the int32 error code.
    pub fn status(&mut self) -> ReadResult<Status> {
        let mut exception = self.i32()?;
        if exception == EX_HAS_REPLY_HEADER {
            let start = self.pos;
            let size = self.i32()?;
            let size = usize::try_from(size).map_err(|_| ReadError::End(start))?;
            self.pos = start.checked_add(size).ok_or(ReadError::End(start))?;
            exception = EX_NONE;
        }
        if exception == EX_NONE {
            return Ok(Status::Ok);
        }
        let message = self.string16()?.unwrap_or_default();
        let stack_start = self.pos;
        let stack_size = self.i32()?;
        if stack_size > 0 {
            self.pos = stack_start
                .checked_add(stack_size as usize)
                .ok_or(ReadError::End(stack_start))?;
        }
        if exception == EX_SERVICE_SPECIFIC {
            let code = self.i32()?;
            return Ok(Status::ServiceSpecific { code, message });
        }
        Ok(Status::Exception {
            code: exception,
            message,
        })
    }

    /// The NDK parcelable body: int32 size (>= 4, and start + size within INT32_MAX), the
    /// fields (`fields` gets the end position, past which a field is absent: an older
    /// writer's parcelable), then the position moves to start + size whatever was read, so a
    /// newer writer's extra fields are skipped.
    pub fn parcelable_body<T>(
        &mut self,
        fields: impl FnOnce(&mut Self, usize) -> ReadResult<T>,
    ) -> ReadResult<T> {
        let start = self.pos;
        let size = self.i32()?;
        if size < 4 || start > (i32::MAX - size) as usize {
            return Err(ReadError::BadParcelableSize { at: start, size });
        }
        let end = start + size as usize;
        if end > self.data.len() {
            return Err(ReadError::BadParcelableSize { at: start, size });
        }
        let value = fields(self, end)?;
        if self.pos > end {
            return Err(ReadError::BadParcelableSize { at: start, size });
        }
        self.pos = end;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_token_is_policy_worksource_header_and_string16() {
        let mut w = Writer::new(None);
        w.interface_token("ab");
        assert_eq!(
            w.data,
            [
                0, 0, 0, 0x80, // PENALTY_GATHER
                0xff, 0xff, 0xff, 0xff, // work source unset
                b'T', b'S', b'Y', b'S', // 'SYST' as a little-endian int32
                2, 0, 0, 0, b'a', 0, b'b', 0, 0, 0, 0, 0, // "ab", NUL unit, padding
            ]
        );
        let mut w = Writer::new(Some(Break::VndrHeader));
        w.interface_token("ab");
        assert_eq!(&w.data[8..12], b"RDNV");
    }

    #[test]
    fn a_parcelable_carries_its_size_including_the_size_word() {
        let mut w = Writer::new(None);
        w.parcelable(|p| {
            p.i32(7).i64(-1);
        });
        assert_eq!(&w.data[..4], &1i32.to_le_bytes());
        assert_eq!(&w.data[4..8], &16i32.to_le_bytes());
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(r.i32(), Ok(1));
        let (a, b) = r
            .parcelable_body(|r, _| Ok((r.i32()?, r.i64()?)))
            .expect("reads back");
        assert_eq!((a, b), (7, -1));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn a_parcelable_reader_skips_fields_it_does_not_know() {
        let mut w = Writer::new(None);
        w.parcelable(|p| {
            p.i32(7).i32(8).i32(9);
        });
        w.i32(42);
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(r.i32(), Ok(1));
        let a = r.parcelable_body(|r, _| r.i32()).expect("reads back");
        assert_eq!(a, 7);
        assert_eq!(r.i32(), Ok(42));
    }

    #[test]
    fn a_parcelable_size_below_four_is_refused() {
        let mut w = Writer::new(None);
        w.i32(1).i32(3).i32(0);
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(r.i32(), Ok(1));
        assert!(matches!(
            r.parcelable_body(|r, _| r.i32()),
            Err(ReadError::BadParcelableSize { size: 3, .. })
        ));
    }

    #[test]
    fn a_status_with_a_service_specific_error_reads_code_and_message() {
        let mut w = Writer::new(None);
        w.i32(EX_SERVICE_SPECIFIC)
            .string16(Some("no"))
            .i32(0)
            .i32(2);
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(
            r.status(),
            Ok(Status::ServiceSpecific {
                code: 2,
                message: "no".into()
            })
        );
    }

    #[test]
    fn a_null_binder_is_not_listed_and_keeps_its_stability_word() {
        let mut w = Writer::new(None);
        w.null_binder();
        assert!(w.offsets.is_empty());
        assert_eq!(w.data.len(), FLAT_OBJECT_SIZE + 4);
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(r.binder(), Ok((None, STABILITY_UNDECLARED)));
    }

    #[test]
    fn strings_round_trip_with_non_bmp_and_bidi_characters() {
        let text = "cam\u{202e}era\u{200b}\u{1f4f7}";
        let mut w = Writer::new(None);
        w.string16(Some(text)).string16(None);
        let mut r = Reader::new(&w.data, &w.offsets);
        assert_eq!(r.string16(), Ok(Some(text.to_owned())));
        assert_eq!(r.string16(), Ok(None));
    }
}
