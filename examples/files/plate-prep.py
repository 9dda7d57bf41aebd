"""Plate preparation: transfers the volumes listed in the plate map that Benchling generated.

Used by the examples "21 - Generate the input CSV in Benchling, then run the OT-2 protocol" and
"50 - The whole lab loop". The plate map is a CSV runtime parameter (robot software 8.0+): the
OT-2 run node uploads the file Benchling generated through POST /dataFiles and names it in the
run, so a new plate needs no protocol edit. Columns: well, volume_ul.
"""
from opentrons import protocol_api

metadata = {"protocolName": "Plate prep from Benchling input", "author": "labwire example"}
# CSV runtime parameters need apiLevel 2.20 (robot software 8.0+).
requirements = {"robotType": "OT-2", "apiLevel": "2.20"}
# For the lab simulator only: one step per row of the plate map.
# sim-steps: csv


def add_parameters(parameters):
    parameters.add_csv_file(variable_name="plate_map", display_name="Plate map", description="well,volume_ul per row (from Benchling)")
    parameters.add_int(variable_name="mix_reps", display_name="Mix repetitions", default=0, minimum=0, maximum=5)


def run(protocol: protocol_api.ProtocolContext):
    plate = protocol.load_labware("corning_96_wellplate_360ul_flat", 1)
    reservoir = protocol.load_labware("nest_12_reservoir_15ml", 2)
    tips = protocol.load_labware("opentrons_96_tiprack_300ul", 3)
    pipette = protocol.load_instrument("p300_single_gen2", "right", tip_racks=[tips])
    rows = protocol.params.plate_map.parse_as_csv()
    header = [c.strip().lower() for c in rows[0]]
    well_col = header.index("well")
    volume_col = header.index("volume_ul") if "volume_ul" in header else None
    for row in rows[1:]:
        if not row or not row[well_col].strip():
            continue
        volume = float(row[volume_col]) if volume_col is not None and row[volume_col].strip() else 50.0
        mix = (protocol.params.mix_reps, volume / 2) if protocol.params.mix_reps else None
        pipette.transfer(volume, reservoir["A1"], plate[row[well_col].strip()], mix_after=mix)
