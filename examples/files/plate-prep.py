"""Plate preparation: transfers the volumes listed in the input CSV that Benchling generated.

Used by the example "50 - The whole lab loop". The CSV comes with the run as a data file
(robot software 5+: protocol.bundled_data; 4.x: a file next to the protocol).
"""
import csv
import io

from opentrons import protocol_api

metadata = {"protocolName": "Plate prep from Benchling input", "author": "labwire example"}
requirements = {"robotType": "OT-2", "apiLevel": "2.15"}


def read_worklist(protocol: protocol_api.ProtocolContext):
    for name, data in (getattr(protocol, "bundled_data", None) or {}).items():
        if name.endswith(".csv"):
            return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return []


def run(protocol: protocol_api.ProtocolContext):
    plate = protocol.load_labware("corning_96_wellplate_360ul_flat", 1)
    reservoir = protocol.load_labware("nest_12_reservoir_15ml", 2)
    tips = protocol.load_labware("opentrons_96_tiprack_300ul", 3)
    pipette = protocol.load_instrument("p300_single_gen2", "right", tip_racks=[tips])
    for row in read_worklist(protocol):
        well = row.get("well") or row.get("Well")
        volume = float(row.get("volume_ul") or row.get("volume") or 50)
        if well:
            pipette.transfer(volume, reservoir["A1"], plate[well])
