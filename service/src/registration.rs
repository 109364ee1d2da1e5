//! Registering with the service manager in the numbering its release speaks.
//!
//! `android.os.IServiceManager` is a platform-internal, unfrozen interface: its transaction codes
//! are its methods' declaration order, and that order changed twice between Android 14 and 16
//! while vendor binaries stay the same across system-only updates. The numberings, read from
//! frameworks/native `libs/binder/aidl/android/os/IServiceManager.aidl` (AOSPA
//! android_frameworks_native c04af456 for the Android 14 order; AOSP android-15.0.0_r20 and
//! android-16.0.0_r4 as vendored verbatim by rsbinder 0.12, `aidl/15`, `aidl/16`):
//!
//! | numbering | releases | getService | checkService | addService | methods |
//! |---|---|---|---|---|---|
//! | [`Numbering::Android14`] | 14, 15 r1-r5 | 1 | 2 | 3 | 14 |
//! | [`Numbering::Android15R6`] | 15 r6 and later (`getService2` inserted at 2) | 1 | 3 | 4 | 15 |
//! | [`Numbering::Android16`] | 16, 17 (`checkService2` inserted at 4) | 1 | 3 | 5 | 16 |
//!
//! Android 15 kept SDK 35 across its change, so for SDK 35 one side-effect-free transaction
//! tells the two apart: code 15 is past the end of the 14-method interface (UNKNOWN_TRANSACTION)
//! and `getServiceDebugInfo()` on r6+. The service does this itself rather than through
//! rsbinder's `hub`, whose Android 14/15 modules exist only for `target_os = "android"` builds
//! with the matching features: this way the same code registers on the phone and in the test
//! bed, where a raw context manager speaks each numbering.

use rsbinder::{Parcel, SIBinder, Status, StatusCode, FIRST_CALL_TRANSACTION};

/// The IServiceManager numbering a service manager speaks (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbering {
    /// Android 14 and Android 15 r1 through r5.
    Android14,
    /// Android 15 from r6 on.
    Android15R6,
    /// Android 16 and 17.
    Android16,
}

impl Numbering {
    pub fn add_service_code(self) -> u32 {
        FIRST_CALL_TRANSACTION
            + match self {
                Numbering::Android14 => 2,
                Numbering::Android15R6 => 3,
                Numbering::Android16 => 4,
            }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Numbering::Android14 => "Android 14 / 15 r1-r5",
            Numbering::Android15R6 => "Android 15 r6+",
            Numbering::Android16 => "Android 16 / 17",
        }
    }
}

/// The SDK 35 probe: `getServiceDebugInfo()` from r6 on, one past the end before.
pub const ANDROID_15_PROBE_CODE: u32 = FIRST_CALL_TRANSACTION + 14;

/// `IServiceManager::DUMP_FLAG_PRIORITY_DEFAULT`, what libbinder's `addService` passes.
const DUMP_FLAG_PRIORITY_DEFAULT: i32 = 1 << 3;

const SERVICE_MANAGER_DESCRIPTOR: &str = "android.os.IServiceManager";

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "Android SDK {0} has no service-manager numbering known to this build (it knows SDK 34 \
         to 37); a restart cannot change that, so the service stays up unregistered"
    )]
    UnknownSdk(u32),
    #[error("the Android 15 numbering probe (code {ANDROID_15_PROBE_CODE}) failed: {0:?}")]
    ProbeFailed(StatusCode),
    #[error("the service manager (binder handle 0) is unreachable: {0:?}")]
    Unreachable(StatusCode),
    #[error("addService (code {code}, {numbering}) failed: {reason}")]
    Refused {
        code: u32,
        numbering: &'static str,
        reason: String,
    },
}

/// How the probe was answered: whether code 15 is a method of this service manager.
pub type ProbeAnswer = Result<bool, StatusCode>;

/// The numbering for `sdk`, asking `probe` only where the SDK does not decide it.
pub fn numbering_for(
    sdk: u32,
    probe: impl FnOnce() -> ProbeAnswer,
) -> Result<Numbering, RegistrationError> {
    match sdk {
        34 => Ok(Numbering::Android14),
        35 => match probe() {
            Ok(false) => Ok(Numbering::Android14),
            Ok(true) => Ok(Numbering::Android15R6),
            Err(status) => Err(RegistrationError::ProbeFailed(status)),
        },
        36 | 37 => Ok(Numbering::Android16),
        other => Err(RegistrationError::UnknownSdk(other)),
    }
}

/// The device's SDK level: `ro.build.version.sdk` on Android. The Linux test bed has no system
/// properties; there `--android-sdk` stands in for it, and without it the service speaks the
/// numbering of `rsb_hub`, rsbinder's service manager (Android 16's).
pub fn device_sdk(override_sdk: Option<u32>) -> u32 {
    if let Some(sdk) = override_sdk {
        return sdk;
    }
    #[cfg(target_os = "android")]
    {
        rsbinder::get_android_sdk_version()
    }
    #[cfg(not(target_os = "android"))]
    {
        36
    }
}

fn service_manager() -> Result<SIBinder, RegistrationError> {
    rsbinder::ProcessState::as_self()
        .context_object()
        .map_err(RegistrationError::Unreachable)
}

fn probe_android_15(context: &SIBinder) -> ProbeAnswer {
    let proxy = context.as_proxy().ok_or(StatusCode::BadType)?;
    let data = proxy.prepare_transact(true)?;
    match proxy.submit_transact(ANDROID_15_PROBE_CODE, &data, 0) {
        Err(StatusCode::UnknownTransaction) => Ok(false),
        // Any answer, an in-band exception included, means the method exists.
        Ok(_) => Ok(true),
        Err(other) => Err(other),
    }
}

/// Registers `binder` as `name` with the device's service manager, in its numbering.
pub fn register(name: &str, binder: &SIBinder, sdk: u32) -> Result<Numbering, RegistrationError> {
    let context = service_manager()?;
    let numbering = numbering_for(sdk, || probe_android_15(&context))?;
    let refused = |reason: String| RegistrationError::Refused {
        code: numbering.add_service_code(),
        numbering: numbering.describe(),
        reason,
    };
    let proxy = context
        .as_proxy()
        .ok_or_else(|| refused("handle 0 is not a proxy".into()))?;
    if proxy.descriptor() != SERVICE_MANAGER_DESCRIPTOR {
        return Err(refused(format!(
            "handle 0 says it is {:?}, not {SERVICE_MANAGER_DESCRIPTOR}",
            proxy.descriptor()
        )));
    }
    let write = || -> rsbinder::Result<Parcel> {
        let mut data = proxy.prepare_transact(true)?;
        data.write(name)?;
        data.write(binder)?;
        data.write(&false)?; // allowIsolated
        data.write(&DUMP_FLAG_PRIORITY_DEFAULT)?;
        Ok(data)
    };
    let data = write().map_err(|e| refused(format!("cannot write the call: {e:?}")))?;
    let mut reply = proxy
        .submit_transact(numbering.add_service_code(), &data, 0)
        .map_err(|e| refused(format!("{e:?}")))?
        .ok_or_else(|| refused("no reply".into()))?;
    let status: Status = reply
        .read()
        .map_err(|e| refused(format!("unreadable reply: {e:?}")))?;
    if !status.is_ok() {
        return Err(refused(status.to_string()));
    }
    Ok(numbering)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sdk_maps_to_its_numbering_and_only_35_probes() {
        let no_probe = || -> ProbeAnswer { panic!("SDK decides it") };
        assert_eq!(numbering_for(34, no_probe).unwrap(), Numbering::Android14);
        assert_eq!(numbering_for(36, no_probe).unwrap(), Numbering::Android16);
        assert_eq!(numbering_for(37, no_probe).unwrap(), Numbering::Android16);
        assert_eq!(
            numbering_for(35, || Ok(false)).unwrap(),
            Numbering::Android14
        );
        assert_eq!(
            numbering_for(35, || Ok(true)).unwrap(),
            Numbering::Android15R6
        );
        assert!(matches!(
            numbering_for(35, || Err(StatusCode::DeadObject)),
            Err(RegistrationError::ProbeFailed(StatusCode::DeadObject))
        ));
        for sdk in [0, 29, 33, 38, u32::MAX] {
            assert!(matches!(
                numbering_for(sdk, no_probe),
                Err(RegistrationError::UnknownSdk(s)) if s == sdk
            ));
        }
    }

    #[test]
    fn add_service_moves_by_one_per_inserted_method() {
        assert_eq!(Numbering::Android14.add_service_code(), 3);
        assert_eq!(Numbering::Android15R6.add_service_code(), 4);
        assert_eq!(Numbering::Android16.add_service_code(), 5);
        // The probe is one past Android 14's last method (getServiceDebugInfo = 14).
        assert_eq!(ANDROID_15_PROBE_CODE, 15);
    }
}
