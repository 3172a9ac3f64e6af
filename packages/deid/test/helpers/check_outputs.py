"""Independent check of de-identification outputs with pydicom.

Reads JSON [{"in": path, "out": path}, ...] on stdin and prints JSON, one
entry per pair: whether pydicom reads the output, pixel-data digests of input
and output as pydicom sees them, the input's instance UIDs, and the markers.
"""
import hashlib, json, sys, warnings

warnings.simplefilter("ignore")
import pydicom
from pydicom.dataset import Dataset

# UIDs that name classes, syntaxes and coding schemes: not instance identity.
CLASS_KEYWORDS = {
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ReferencedSOPClassUIDInFile",
    "ReferencedTransferSyntaxUIDInFile", "SOPClassesInStudy", "RelatedGeneralSOPClassUID",
    "ContextGroupExtensionCreatorUID", "ReferencedRelatedGeneralSOPClassUIDInFile",
    "PrivateInformationCreatorUID", "CodingSchemeRegistry", "MappingResourceUID",
    "OriginalSpecializedSOPClassUID", "TemplateExtensionCreatorUID", "RetrieveLocationUID",
}


def uids(ds, out):
    for el in ds.iterall():
        if el.VR == "UI" and el.keyword not in CLASS_KEYWORDS and el.value:
            vals = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]
            for v in vals:
                v = str(v).strip("\0 ")
                if v and not v.startswith("1.2.840.10008."):
                    out.add(v)


def pix(ds):
    if "PixelData" not in ds:
        return None
    return hashlib.sha256(ds.PixelData).hexdigest()


def main():
    pairs = json.load(sys.stdin)
    res = []
    for p in pairs:
        r = {"in": p["in"], "out": p["out"]}
        try:
            ds = pydicom.dcmread(p["out"])
            # touch every value so charset decoding and value conversion run
            for el in ds.iterall():
                _ = el.value
            r["ok"] = True
            r["outPix"] = pix(ds)
            r["patientIdentityRemoved"] = str(ds.get("PatientIdentityRemoved", ""))
            r["methods"] = list(ds.get("DeidentificationMethod", [])) if ds.get("DeidentificationMethod") is not None else []
            if isinstance(ds.get("DeidentificationMethod"), str):
                r["methods"] = [ds.DeidentificationMethod]
            r["methodCodes"] = [str(i.CodeValue) for i in ds.get("DeidentificationMethodCodeSequence", [])]
            r["ltim"] = str(ds.get("LongitudinalTemporalInformationModified", ""))
            r["patientID"] = str(ds.get("PatientID", ""))
            r["patientName"] = str(ds.get("PatientName", ""))
            sop = ds.get("SOPInstanceUID")
            r["metaMatches"] = sop is None or str(ds.file_meta.MediaStorageSOPInstanceUID) == str(sop)
            r["ts"] = str(ds.file_meta.TransferSyntaxUID)
        except Exception as e:  # noqa: BLE001
            r["ok"] = False
            r["error"] = repr(e)[:300]
        try:
            di = pydicom.dcmread(p["in"], force=True)
            r["inPix"] = pix(di)
            s = set()
            uids(di, s)
            if hasattr(di, "file_meta"):
                v = di.file_meta.get("MediaStorageSOPInstanceUID")
                if v:
                    s.add(str(v).strip("\0 "))
            r["inUids"] = sorted(s)
            r["inTs"] = str(di.file_meta.get("TransferSyntaxUID", "")) if hasattr(di, "file_meta") else ""
        except Exception as e:  # noqa: BLE001
            r["inError"] = repr(e)[:200]
        res.append(r)
    json.dump(res, sys.stdout)


main()
