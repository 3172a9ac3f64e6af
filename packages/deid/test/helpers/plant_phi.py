"""Write copies of real DICOM files with fake PHI tokens planted in many places.

stdin: JSON {"pairs": [{"in": p, "out": p}], "t": {name: token}}; prints JSON list of written outputs.
"""
import json, sys, warnings

warnings.simplefilter("ignore")
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence


def item(**kw):
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def plant(ds, t):
    fam, giv, pid = t["family"], t["given"], t["pid"]
    ds.PatientName = f"{fam}^{giv}"
    ds.PatientID = pid
    ds.PatientBirthDate = t["birth"]
    ds.IssuerOfPatientID = t["issuer"]
    ds.PatientAddress = f"{t['street']} Street, Leeds"
    ds.OtherPatientIDs = t["otherid"]
    ds.OtherPatientIDsSequence = Sequence([item(PatientID=t["otherid2"], TypeOfPatientID="TEXT")])
    ds.PatientMotherBirthName = t["mother"]
    ds.PatientBirthName = t["birthname"]
    ds.PatientTelephoneNumbers = t["phone"]
    ds.MedicalRecordLocator = t["mrl"]
    ds.Occupation = t["occupation"]
    ds.AdditionalPatientHistory = t["history"]
    ds.PatientComments = t["pcomments"]
    ds.ReferringPhysicianName = t["referrer"]
    ds.PerformingPhysicianName = t["performer"]
    ds.PhysiciansOfRecord = t["ofrecord"]
    ds.NameOfPhysiciansReadingStudy = t["reader"]
    ds.RequestingPhysician = t["requester"]
    ds.OperatorsName = t["operator"]
    ds.InstitutionName = f"{t['institution']} Hospital"
    ds.InstitutionAddress = t["instaddr"]
    ds.StationName = t["station"]
    ds.DeviceSerialNumber = t["serial"]
    ds.AccessionNumber = t["accession"]
    ds.StudyID = t["studyid"]
    ds.StudyDescription = f"CT chest for {fam} {giv}"
    ds.SeriesDescription = f"Series {pid} nhs 943 476 5919"
    ds.ProtocolName = f"{pid} protocol"
    ds.ImageComments = f"Comment about {giv} call +44 20 7946 0958 on 03/02/1971"
    ds.AdmittingDiagnosesDescription = f"{fam} admitted"
    ds.RequestAttributesSequence = Sequence([item(
        RequestedProcedureID=t["reqproc"], ScheduledProcedureStepID=t["sps"],
        AccessionNumber=t["accession2"], RequestedProcedureDescription=f"Scan of {fam}")])
    # private tags, including a private sequence
    blk = ds.private_block(0x0011, "ACME PHI", create=True)
    blk.add_new(0x01, "LO", t["private"])
    blk.add_new(0x02, "SQ", Sequence([item(PatientName=t["privnested"])]))
    # deeply nested: sequence > item > sequence > item > sequence > item
    deep = item(PatientID=t["deepid"], InstitutionName=t["deepinst"], ReferencedSOPInstanceUID="1.2.3.4.5.6.7.8.9")
    ds.ReferencedSeriesSequence = Sequence([item(
        SeriesInstanceUID="1.2.3.4.5.6.7.8.10",
        ReferencedImageSequence=Sequence([item(
            ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2", ReferencedSOPInstanceUID="1.2.3.4.5.6.7.8.11",
            SourceImageSequence=Sequence([deep]))]))])
    # structured content
    inner = item(RelationshipType="HAS OBS CONTEXT", ValueType="PNAME", PersonName=t["srperson"],
                 ConceptNameCodeSequence=Sequence([item(CodeValue="121008", CodingSchemeDesignator="DCM", CodeMeaning="Person Observer Name")]))
    text = item(RelationshipType="CONTAINS", ValueType="TEXT", TextValue=f"Patient {fam} seen by {t['srtext']}",
                ConceptNameCodeSequence=Sequence([item(CodeValue="121071", CodingSchemeDesignator="DCM", CodeMeaning="Finding")]),
                ContentSequence=Sequence([inner]))
    if "ContentSequence" in ds:
        ds.ContentSequence.append(text)
    else:
        ds.ContentSequence = Sequence([text])
    # bytes no parser visits: the preamble and meta elements that are not carried over
    ds.preamble = (t["preamble"].encode() + b"\0" * 128)[:128]
    ds.file_meta.SourceApplicationEntityTitle = t["aetitle"]


def main():
    req = json.load(sys.stdin)
    done = []
    for p in req["pairs"]:
        ds = pydicom.dcmread(p["in"])
        plant(ds, req["t"])
        ds.save_as(p["out"], write_like_original=False)
        done.append(p["out"])
    print(json.dumps(done))


main()
