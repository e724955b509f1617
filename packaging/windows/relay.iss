; Inno Setup script: the Windows installer of Relay, from the one-folder bundle build.spec makes
; on Windows (dist\relay\ with relayw.exe, the window without a console, and relay.exe, the command line).
;
;   pyinstaller build.spec --noconfirm
;   iscc /DAppVersion=0.1.0 packaging\windows\relay.iss     -> dist\relay-0.1.0-setup.exe
;
; Installs per machine under Program Files, a Start-menu entry, an optional desktop icon, "Open
; with Relay" for .dcm files, DICOMDIR files and folders (Explorer's context menu), and relay.exe
; on the PATH for scripts. Not built or tested on Linux CI (no Windows here); see the note at the
; top of build.spec.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{5E0C1F2A-7C1B-4B52-9A55-52454C415900}
AppName=Relay
AppVersion={#AppVersion}
AppPublisher=The Relay developers
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\Relay
DefaultGroupName=Relay
DisableProgramGroupPage=yes
LicenseFile=..\..\LICENSE
OutputDir=..\..\dist
OutputBaseFilename=relay-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\relay.ico
UninstallDisplayIcon={app}\relayw.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequired=admin
ChangesAssociations=yes
ChangesEnvironment=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "dcmassoc"; Description: "Open .dcm files with Relay"; GroupDescription: "File types:"
Name: "addtopath"; Description: "Add relay.exe to the PATH (command line and scripts)"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "..\..\dist\relay\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Relay"; Filename: "{app}\relayw.exe"
Name: "{autodesktop}\Relay"; Filename: "{app}\relayw.exe"; Tasks: desktopicon

[Registry]
; the DICOM file type and .dcm (only when asked: a site's PACS viewer may own .dcm)
Root: HKA; Subkey: "Software\Classes\Relay.DICOM"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\Relay.DICOM\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\relayw.exe,0"; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\Relay.DICOM\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\relayw.exe"" ""%1"""; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "Relay.DICOM"; ValueData: ""; Flags: uninsdeletevalue; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\.dcm"; ValueType: string; ValueName: "Content Type"; ValueData: "application/dicom"; Flags: createvalueifdoesntexist; Tasks: dcmassoc
; "Open with Relay" on every file (a DICOMDIR has no extension) and on folders (a CD, an exam)
Root: HKA; Subkey: "Software\Classes\*\shell\Relay"; ValueType: string; ValueName: ""; ValueData: "Open with Relay"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\*\shell\Relay"; ValueType: string; ValueName: "AppliesTo"; ValueData: "System.FileName:=""DICOMDIR"" OR System.FileExtension:=.dcm"
Root: HKA; Subkey: "Software\Classes\*\shell\Relay"; ValueType: string; ValueName: "Icon"; ValueData: "{app}\relayw.exe,0"
Root: HKA; Subkey: "Software\Classes\*\shell\Relay\command"; ValueType: string; ValueName: ""; ValueData: """{app}\relayw.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Directory\shell\Relay"; ValueType: string; ValueName: ""; ValueData: "Open with Relay"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Directory\shell\Relay"; ValueType: string; ValueName: "Icon"; ValueData: "{app}\relayw.exe,0"
Root: HKA; Subkey: "Software\Classes\Directory\shell\Relay\command"; ValueType: string; ValueName: ""; ValueData: """{app}\relayw.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Drive\shell\Relay"; ValueType: string; ValueName: ""; ValueData: "Open with Relay"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Drive\shell\Relay\command"; ValueType: string; ValueName: ""; ValueData: """{app}\relayw.exe"" ""%1"""
; relay.exe on the machine's PATH
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\relayw.exe"; Description: "{cm:LaunchProgram,Relay}"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKLM, 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment', 'Path', Path) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;
