//! The Protobuf files Confluent's registry and serializers bundle, so that a schema may import
//! them without a reference (as Confluent's Java serializer resolves them).

/// Imports Confluent resolves without a reference, beyond Google's `google/protobuf/*`
/// (which protox carries): Confluent's own meta and decimal types and the `google/type` set.
pub const BUNDLED_PROTO_FILES: &[(&str, &str)] = &[
    (
        "confluent/meta.proto",
        "syntax = \"proto3\";\npackage confluent;\nimport \"google/protobuf/descriptor.proto\";\n\
         option java_package = \"io.confluent.protobuf\";\noption java_outer_classname = \"MetaProto\";\n\
         message Meta {\n  string doc = 1;\n  map<string, string> params = 2;\n  repeated string tags = 3;\n  repeated Rule rules = 4;\n}\n\
         message Rule {\n  string name = 1;\n  string doc = 2;\n  string expr = 3;\n  string sql = 4;\n}\n\
         extend google.protobuf.FileOptions {\n  Meta file_meta = 1088;\n}\n\
         extend google.protobuf.MessageOptions {\n  Meta message_meta = 1088;\n}\n\
         extend google.protobuf.FieldOptions {\n  Meta field_meta = 1088;\n}\n\
         extend google.protobuf.EnumOptions {\n  Meta enum_meta = 1088;\n}\n\
         extend google.protobuf.EnumValueOptions {\n  Meta enum_value_meta = 1088;\n}\n",
    ),
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\";\npackage confluent.type;\n\
         message Decimal {\n  bytes value = 1;\n  uint32 precision = 2;\n  int32 scale = 3;\n}\n",
    ),
    (
        "google/type/date.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Date {\n  int32 year = 1;\n  int32 month = 2;\n  int32 day = 3;\n}\n",
    ),
    (
        "google/type/timeofday.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message TimeOfDay {\n  int32 hours = 1;\n  int32 minutes = 2;\n  int32 seconds = 3;\n  int32 nanos = 4;\n}\n",
    ),
    (
        "google/type/money.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Money {\n  string currency_code = 1;\n  int64 units = 2;\n  int32 nanos = 3;\n}\n",
    ),
    (
        "google/type/latlng.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message LatLng {\n  double latitude = 1;\n  double longitude = 2;\n}\n",
    ),
    (
        "google/type/decimal.proto",
        "syntax = \"proto3\";\npackage google.type;\nmessage Decimal {\n  string value = 1;\n}\n",
    ),
    (
        "google/type/fraction.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Fraction {\n  int64 numerator = 1;\n  int64 denominator = 2;\n}\n",
    ),
    (
        "google/type/quaternion.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Quaternion {\n  double x = 1;\n  double y = 2;\n  double z = 3;\n  double w = 4;\n}\n",
    ),
    (
        "google/type/expr.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Expr {\n  string expression = 1;\n  string title = 2;\n  string description = 3;\n  string location = 4;\n}\n",
    ),
    (
        "google/type/interval.proto",
        "syntax = \"proto3\";\npackage google.type;\nimport \"google/protobuf/timestamp.proto\";\n\
         message Interval {\n  google.protobuf.Timestamp start_time = 1;\n  google.protobuf.Timestamp end_time = 2;\n}\n",
    ),
    (
        "google/type/dayofweek.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum DayOfWeek {\n  DAY_OF_WEEK_UNSPECIFIED = 0;\n  MONDAY = 1;\n  TUESDAY = 2;\n  WEDNESDAY = 3;\n  THURSDAY = 4;\n  FRIDAY = 5;\n  SATURDAY = 6;\n  SUNDAY = 7;\n}\n",
    ),
    (
        "google/type/month.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum Month {\n  MONTH_UNSPECIFIED = 0;\n  JANUARY = 1;\n  FEBRUARY = 2;\n  MARCH = 3;\n  APRIL = 4;\n  MAY = 5;\n  JUNE = 6;\n  JULY = 7;\n  AUGUST = 8;\n  SEPTEMBER = 9;\n  OCTOBER = 10;\n  NOVEMBER = 11;\n  DECEMBER = 12;\n}\n",
    ),
    (
        "google/type/calendar_period.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum CalendarPeriod {\n  CALENDAR_PERIOD_UNSPECIFIED = 0;\n  DAY = 1;\n  WEEK = 2;\n  FORTNIGHT = 3;\n  MONTH = 4;\n  QUARTER = 5;\n  HALF = 6;\n  YEAR = 7;\n}\n",
    ),
];

/// The text of a bundled file, by import name.
pub fn bundled_proto_file(name: &str) -> Option<&'static str> {
    BUNDLED_PROTO_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
